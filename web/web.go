// Package web holds the dashboard's templates and static files, embedded in
// the collector binary. Templates are html/template files rendered
// server-side; pages work without JavaScript.
package web

import "embed"

// FS holds templates/*.html and static/*.
//
//go:embed templates static
var FS embed.FS
