package collector

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/redact"
)

// RedactionView is an experiment's redaction in the API. The hashing key is
// never shown.
type RedactionView struct {
	Experiment string        `json:"experiment"`
	Rules      []redact.Rule `json:"rules"`
	Author     string        `json:"author,omitempty"`
	UpdatedAt  time.Time     `json:"updated_at,omitzero"`
}

func (s *handlers) apiRedaction(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	r, err := s.db.Redaction(c.Request().Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return c.JSON(http.StatusOK, RedactionView{Experiment: name, Rules: []redact.Rule{}})
	}
	if err != nil {
		return err
	}
	v := RedactionView{Experiment: name, Author: r.Author, UpdatedAt: r.UpdatedAt}
	if err := json.Unmarshal(r.Rules, &v.Rules); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// apiPutRedaction replaces an experiment's redaction rules; the verifiers
// apply them to every sample and dead letter stored from then on.
func (s *handlers) apiPutRedaction(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var body struct {
		Rules []redact.Rule `json:"rules"`
	}
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	if body.Rules == nil {
		return echo.NewHTTPError(http.StatusBadRequest, `body: field "rules" is required (use [] for none)`)
	}
	// A placeholder key: the store makes the real one.
	if _, err := redact.New(body.Rules, make([]byte, 32)); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	doc, _ := json.Marshal(body.Rules) // plain strings always marshal
	saved, err := s.db.SaveRedaction(c.Request().Context(), name, doc, principalName(c))
	if err != nil {
		return err
	}
	if s.notify != nil {
		if err := s.notify(name); err != nil {
			s.log.Warn("collector: announce redaction change", "experiment", name, "err", err)
		}
	}
	s.log.Info("collector: redaction saved", "experiment", name, "rules", len(body.Rules), "author", saved.Author)
	return c.JSON(http.StatusOK, RedactionView{Experiment: name, Rules: body.Rules, Author: saved.Author, UpdatedAt: saved.UpdatedAt})
}
