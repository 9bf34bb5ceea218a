// Package docs holds Parity's documentation. Its Go side only embeds the
// OpenAPI document (openapi.yaml), so the collector serves the same contract
// the repository publishes.
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3 document of the collector's JSON API, as YAML.
//
//go:embed openapi.yaml
var OpenAPI []byte
