package test

import (
	"sort"
	"strings"
	"testing"

	"github.com/ladder-cdk/ladder/app/ladder"
)

// A bad value fails before anything is made: the app gets no stack at all,
// and the one message names the key.
func TestInvalidConfigurationAddsNothing(t *testing.T) {
	app := newApp(map[string]any{"tier1InstanceType": "t3.small", "primaryRegoin": "us-west-2"})
	l, _, err := ladder.New(app, repoRoot())
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"tier1InstanceType", "not a Graviton", "primaryRegoin", `did you mean "primaryRegion"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if l != nil || len(*app.Node().Children()) != 0 {
		t.Errorf("the app got constructs despite the error: %d children", len(*app.Node().Children()))
	}
}

func TestTierSelectsRungs(t *testing.T) {
	tier2Stacks := strings.Join([]string{tier2, tier2Edge, tier2EdgeAlarms}, ",")
	tier4Stacks := tier4 + "," + tier4DR + "," + tier4HealthAlarms
	for _, c := range []struct {
		tier any
		want string
	}{
		{"1", tier1}, {"tier1", tier1}, {[]any{1.0}, tier1},
		{"2", tier2Stacks}, {"all", tier1 + "," + tier2Stacks + "," + tier3 + "," + tier4Stacks}, {[]any{1.0, 2.0}, tier1 + "," + tier2Stacks},
		{"3", tier3}, {"4", tier4Stacks},
	} {
		app := newApp(map[string]any{"tier": c.tier})
		l, _, err := ladder.New(app, repoRoot())
		if err != nil {
			t.Fatalf("tier=%v: %v", c.tier, err)
		}
		var names []string
		for n := range l.Stacks {
			names = append(names, n)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != c.want {
			t.Errorf("tier=%v selected %v, want %s", c.tier, names, c.want)
		}
	}
}
