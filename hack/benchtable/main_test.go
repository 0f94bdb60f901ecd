package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTableFromBenchLines: each row's figures come from the printed lines; a row whose figures
// were not printed is left out rather than shown with holes.
func TestTableFromBenchLines(t *testing.T) {
	in := strings.Join([]string{
		"bench: trace.builds_per_real_change=1.00 goal=1.00",
		"bench: trace.builds_per_real_change.mco_ocl_started=5.22",
		"bench: trace.builds_per_real_change.mco_ocl_completed=4.33",
		"bench: trace.builds_per_real_change.nightly=3.33",
		"bench: trace.builds_per_real_change.nightly_checked=1.00",
		"noise",
	}, "\n")
	var out strings.Builder
	if err := run(strings.NewReader(in), "bench", "", &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "| 1.00 | 1.00 | MCO on-cluster layering (MachineOSConfig): 5.22 started, 4.33 completed; nightly cron: 3.33; nightly cron with a change check: 1.00 |") {
		t.Errorf("table:\n%s", got)
	}
	if strings.Contains(got, "rollouts") || strings.Count(got, "\n") != 3 {
		t.Errorf("rows without printed figures are in the table:\n%s", got)
	}
}

func TestReplaceBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(p, []byte("a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceBlock(p, "bench", "new\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "a\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\nb\n" {
		t.Errorf("README after the replace:\n%s", b)
	}
	if err := replaceBlock(p, "bench-build", "x"); err == nil {
		t.Error("a missing block was not reported")
	}
}
