package service

import (
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/parityhq/parity/pkg/envelope"
)

// Rollout is the stage of each audience, as a release owner would set it in
// a feature-flag service: the testing group first, then chosen countries and
// the pro plan, then everyone.
type Rollout struct {
	TestingGroup envelope.Stage // users 123 and 456
	Segments     envelope.Stage // users in IN or US, or on the pro plan
	Everyone     envelope.Stage
}

// DefaultRollout is the command's rollout: the testing group live, the
// segments in shadow, everyone else in dualwrite.
func DefaultRollout() Rollout {
	return Rollout{TestingGroup: envelope.StageLive, Segments: envelope.StageShadow, Everyone: envelope.StageDualWrite}
}

// rolloutProvider serves the orders-migration string flag from memory.
func rolloutProvider(r Rollout) *memprovider.InMemoryProvider {
	variants := map[string]any{
		"testing-group": string(r.TestingGroup),
		"segments":      string(r.Segments),
		"everyone":      string(r.Everyone),
	}
	evaluate := func(f memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		variant, reason := "everyone", openfeature.DefaultReason
		switch key, _ := fc[openfeature.TargetingKey].(string); {
		case key == "123" || key == "456":
			variant, reason = "testing-group", openfeature.TargetingMatchReason
		case fc["country"] == "IN" || fc["country"] == "US" || fc["plan"] == "pro":
			variant, reason = "segments", openfeature.TargetingMatchReason
		}
		return f.Variants[variant], openfeature.ProviderResolutionDetail{Variant: variant, Reason: reason}
	}
	return memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		FlagKey: {Key: FlagKey, State: memprovider.Enabled, DefaultVariant: "everyone", Variants: variants, ContextEvaluator: &evaluate},
	})
}
