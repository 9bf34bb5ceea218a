package collector

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parityhq/parity/internal/store"
	"github.com/parityhq/parity/pkg/segment"
)

// SegmentConfigView is one version of an experiment's segment definition.
type SegmentConfigView struct {
	Experiment string    `json:"experiment"`
	Version    int64     `json:"version"`
	Attrs      []string  `json:"attrs"`
	Cap        int       `json:"cap"`
	Author     string    `json:"author"`
	Reason     string    `json:"reason"`
	CreatedAt  time.Time `json:"created_at"`
}

// SegmentConfigUpdate is the body of PUT …/segment-config.
type SegmentConfigUpdate struct {
	Attrs  []string `json:"attrs"`
	Cap    int      `json:"cap"`
	Reason string   `json:"reason"`
	// Author names the person the change is made for, beside the token.
	Author string `json:"author,omitempty"`
}

func segmentConfigView(c store.SegmentConfig) SegmentConfigView {
	return SegmentConfigView{Experiment: c.Experiment, Version: c.Version, Attrs: c.Attrs, Cap: c.Cap, Author: c.Author,
		Reason: c.Reason, CreatedAt: c.CreatedAt}
}

// apiSegmentConfig answers GET …/segment-config: the experiment's current
// segment definition.
func (s *handlers) apiSegmentConfig(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	cfg, err := s.db.SegmentConfig(c.Request().Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "experiment "+name+" has no segment definition yet: the first verifier "+
			"to see one of its pairs stores its defaults (--segment-attrs, --segment-cap); PUT one to set it before")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, segmentConfigView(cfg))
}

// apiSegmentConfigHistory answers GET …/segment-config/history: every
// version, newest first.
func (s *handlers) apiSegmentConfigHistory(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	limit, err := limitParam(c, 20, 500)
	if err != nil {
		return err
	}
	hist, err := s.db.SegmentConfigHistory(c.Request().Context(), name, limit)
	if err != nil {
		return err
	}
	out := make([]SegmentConfigView, len(hist))
	for i, h := range hist {
		out[i] = segmentConfigView(h)
	}
	return c.JSON(http.StatusOK, out)
}

// apiPutSegmentConfig answers PUT …/segment-config: stores the experiment's
// next segment definition and tells the verifiers, which split the
// experiment's pairs with it from then on.
func (s *handlers) apiPutSegmentConfig(c echo.Context) error {
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	var u SegmentConfigUpdate
	if err := decodeBody(c, &u); err != nil {
		return err
	}
	u.Reason = strings.TrimSpace(u.Reason)
	switch {
	case u.Reason == "":
		return echo.NewHTTPError(http.StatusBadRequest, `body: field "reason" is required; the history keeps it`)
	case len(u.Reason) > 1000 || len(u.Author) > 200:
		return echo.NewHTTPError(http.StatusBadRequest, "body: reason is limited to 1000 bytes and author to 200")
	}
	if u.Attrs == nil {
		u.Attrs = []string{}
	}
	def := segment.Definition{Attrs: u.Attrs, Cap: u.Cap}
	if err := def.Validate(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "body: "+strings.TrimPrefix(err.Error(), segment.ErrInvalid.Error()+": "))
	}
	ctx := c.Request().Context()
	author := authorOf(c, u.Author)
	saved, err := s.db.SaveSegmentConfig(ctx, name, def, author, u.Reason)
	if err != nil {
		return err
	}
	if s.notify != nil {
		if err := s.notify(name); err != nil {
			// The verifiers' periodic reload picks it up regardless.
			s.log.Warn("collector: announce segment definition change", "experiment", name, "err", err)
		}
	}
	s.log.Info("collector: segment definition saved", "experiment", name, "version", saved.Version, "author", author)
	return c.JSON(http.StatusOK, segmentConfigView(saved))
}
