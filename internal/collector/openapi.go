package collector

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"

	"github.com/parityhq/parity/docs"
)

// openAPIJSON is docs/openapi.yaml as JSON, converted once.
var openAPIJSON = func() []byte {
	b, err := openAPIDoc()
	if err != nil {
		panic(err) // the embedded document is checked by the tests
	}
	return b
}()

// openAPIDoc converts the embedded OpenAPI document to JSON.
func openAPIDoc() ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(docs.OpenAPI, &v); err != nil {
		return nil, fmt.Errorf("collector: docs/openapi.yaml: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("collector: docs/openapi.yaml as JSON: %w", err)
	}
	return b, nil
}

// apiOpenAPI serves the API's OpenAPI document.
func (s *handlers) apiOpenAPI(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, openAPIJSON)
}
