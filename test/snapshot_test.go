package test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Golden templates live in test/snapshots/. `make snapshot-update` rewrites
// them; the diff is then reviewed like code.
const snapshotDir = "snapshots"

var (
	// Asset hashes and image tags are 64 hex digits and change with any
	// source edit; the snapshot is about the infrastructure, not the bytes
	// of the code, so they are masked. Logical ids keep their 8-hex suffix.
	assetHash = regexp.MustCompile(`[0-9a-f]{64}`)
)

// normalize removes what depends on the machine or on unrelated edits.
func normalize(tpl map[string]any) ([]byte, error) {
	// Round-trip through JSON to deep-copy before editing.
	raw, err := json.Marshal(tpl)
	if err != nil {
		return nil, err
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	// CDKMetadata is a compressed list of construct types used: it changes
	// with the CDK version and says nothing a reviewer can read.
	if res, ok := c["Resources"].(map[string]any); ok {
		delete(res, "CDKMetadata")
	}
	if cond, ok := c["Conditions"].(map[string]any); ok {
		delete(cond, "CDKMetadataAvailable")
		if len(cond) == 0 {
			delete(c, "Conditions")
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return assetHash.ReplaceAll(buf.Bytes(), []byte("<asset-hash>")), nil
}

func TestSnapshots(t *testing.T) {
	update := os.Getenv("UPDATE_SNAPSHOTS") != ""
	for _, set := range []struct {
		name string
		s    *synthesized
	}{{"default", defaults}, {"full", full}} {
		for _, stack := range set.s.names() {
			t.Run(set.name+"/"+stack, func(t *testing.T) {
				got, err := normalize(set.s.templates[stack])
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(snapshotDir, set.name, stack+".template.json")
				if update {
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("no snapshot for %s (%v): run `make snapshot-update` and review the new file", stack, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s differs from the synthesized template:\n%s\nIf the change is intended, run `make snapshot-update` and review `git diff %s`.",
						file, firstDiff(string(want), string(got)), file)
				}
			})
		}
	}
}

// firstDiff shows a few lines around the first difference.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			lo := max(0, i-3)
			var b strings.Builder
			for j := lo; j < i; j++ {
				if j < len(w) {
					b.WriteString("    " + w[j] + "\n")
				}
			}
			b.WriteString("  - " + wl + "\n  + " + gl + "\n")
			return b.String()
		}
	}
	return "(no line differs)"
}
