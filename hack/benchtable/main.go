// Command benchtable turns the `bench: <name>=<value> [goal=<goal>]` lines that `make bench` and
// `make bench-build` print into the README's Performance table, so every figure there is one a
// command printed: nothing in the table is typed by hand. With -readme it replaces the block
// between `<!-- <block>:begin -->` and `<!-- <block>:end -->` in that file; otherwise it prints
// the table.
//
//	go run ./hack/benchtable -block bench [-readme README.md] < bench-lines
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// row is one figure of the table: a label and a format of its value, goal and baselines, whose
// {name} placeholders are bench values ({pools} is scale.pools, ...).
type row struct {
	label, value, goal, baselines string
}

// tables are the rows of each block, in order. A row whose placeholders are not all printed is
// left out (and said on stderr): a figure is in the table only when a command printed it.
var tables = map[string][]row{
	"bench": {
		{"builds per real change of inputs (month trace: `controller/poolimage/testdata/month.trace.yaml`)", "{trace.builds_per_real_change}", "{trace.builds_per_real_change.goal}",
			"MCO on-cluster layering (MachineOSConfig): {trace.builds_per_real_change.mco_ocl_started} started, {trace.builds_per_real_change.mco_ocl_completed} completed; nightly cron: {trace.builds_per_real_change.nightly}; nightly cron with a change check: {trace.builds_per_real_change.nightly_checked}"},
		{"rollouts (osImageURL changes, a reboot of every node) per real change (month trace)", "{trace.rollouts_per_real_change}", "{trace.rollouts_per_real_change.goal}",
			"MCO on-cluster layering: {trace.rollouts_per_real_change.mco_ocl}; nightly cron: {trace.rollouts_per_real_change.nightly}; with a change check: {trace.rollouts_per_real_change.nightly_checked}"},
		{"hours on an image older than the release, beyond the build (month trace)", "{trace.stale_hours_beyond_build}", "{trace.stale_hours_beyond_build.goal}",
			"MCO on-cluster layering: {trace.stale_hours_beyond_build.mco_ocl}; nightly cron: {trace.stale_hours_beyond_build.nightly}"},
		{"API writes in a full resync with nothing to do ({scale.pools} pools, real API server)", "{scale.resync_api_writes}", "{scale.resync_api_writes.goal}", ""},
		{"reconcile latency in that resync, p50 / p99", "{scale.reconcile_p50_ms} / {scale.reconcile_p99_ms} ms", "", ""},
		{"time to steady state ({scale.pools} pools, client QPS {scale.kube_api_qps}, shipped defaults)", "{scale.steady_state_seconds} s", "", ""},
		{"controller memory ({scale.pools} pools)", "{scale.controller_rss_mb} MB (peak {scale.controller_peak_rss_mb} MB)", "", ""},
		{"ControllerConfig base change → PipelineRun, p50 / p99 ({scale.pools} pools, shipped defaults: quiet period 15 s)", "{scale.base_change_to_run_p50_seconds} / {scale.base_change_to_run_p99_seconds} s", "{scale.base_change_to_run_p50_seconds.goal} s",
			"with quiet-period 0s: {scale.base_change_to_run_quiet0_p50_seconds} / {scale.base_change_to_run_quiet0_p99_seconds} s"},
		{"render / inputs hash", "{generator.render_us} / {generator.inputs_hash_us} µs", "{generator.render_us.goal} / {generator.inputs_hash_us.goal} µs", ""},
		{"reconcile on fake clients, 1,000 pools: steady / first build", "{reconcile.fake_1000_pools_steady_us} / {reconcile.fake_1000_pools_first_build_us} µs", "", ""},
	},
	"bench-build": {
		{"build step, rebuild after a last-line change / cold (layer cache, real buildah and registry)", "{build_cache.warm_over_cold_build_step} ({build_cache.warm_build_step_seconds} s / {build_cache.cold_build_step_seconds} s)", "≤ {build_cache.warm_over_cold_build_step.goal}",
			"whole run {build_cache.warm_over_cold_run} ({build_cache.warm_run_seconds} s / {build_cache.cold_run_seconds} s)"},
		{"cluster upgrade: base change → rebuilt image promoted and rendered (stack, stand-in MCO with a 5 s render delay; Ready waits for the render)", "{upgrade.prebuilt_promotion_seconds} s with the prebuild", "",
			"{upgrade.rebuild_promotion_seconds} s without (the build at the upgrade, the pool held meanwhile)"},
		{"cluster upgrade: configurations each node rolls out (stand-in MCO template/render/node)", "{upgrade.rollouts_held} without the prebuild, {upgrade.rollouts_prebuilt} with it", "1",
			"{upgrade.rollouts_follow} with upgradeStrategy Follow, the MCO's own behaviour (templates on the old image, then the new image)"},
	},
}

var line = regexp.MustCompile(`^bench: ([^=\s]+)=(\S+)(?:\s+goal=(\S+))?`)

func main() {
	block := flag.String("block", "bench", "which table: bench or bench-build")
	readme := flag.String("readme", "", "replace the table's block in this file instead of printing it")
	flag.Parse()
	if err := run(os.Stdin, *block, *readme, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, block, readme string, out io.Writer) error {
	rows, ok := tables[block]
	if !ok {
		return fmt.Errorf("no table %q", block)
	}
	values := map[string]string{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			values[m[1]] = m[2]
			if m[3] != "" {
				values[m[1]+".goal"] = m[3]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("| figure | ours | goal | baselines |\n|---|---|---|---|\n")
	for _, r := range rows {
		cells, missing := make([]string, 0, 4), ""
		for _, f := range []string{r.label, r.value, r.goal, r.baselines} {
			c, m := fill(f, values)
			if m != "" {
				missing = m
			}
			cells = append(cells, c)
		}
		if missing != "" {
			fmt.Fprintf(os.Stderr, "benchtable: %q left out: %s was not printed\n", r.label, missing)
			continue
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	if readme == "" {
		_, err := io.WriteString(out, b.String())
		return err
	}
	return replaceBlock(readme, block, b.String())
}

var placeholder = regexp.MustCompile(`\{([^}]+)\}`)

// fill replaces the {name} placeholders of f with values; missing names the first one absent.
func fill(f string, values map[string]string) (string, string) {
	missing := ""
	return placeholder.ReplaceAllStringFunc(f, func(p string) string {
		name := p[1 : len(p)-1]
		v, ok := values[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	}), missing
}

// replaceBlock writes table between the block's markers in path.
func replaceBlock(path, block, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := "<!-- "+block+":begin -->\n", "<!-- "+block+":end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no block %s…%s", path, strings.TrimSpace(begin), end)
	}
	s = s[:i+len(begin)] + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
