package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
)

// MaxRunNameLength bounds PipelineRun names so that Tekton's TaskRun and pod names
// (<run>-<pipeline task>-pod[-retryN]) stay under 63 characters without truncation.
const MaxRunNameLength = 44

// runHashChars is how many characters of the inputs hash a run name carries.
const runHashChars = 10

// RunName returns the deterministic PipelineRun name of the build of inputs hash for pool:
// "ocl-<pool>-<first 10 characters of hash>", at most 44 characters, a valid DNS-1123 label.
// A long pool name is shortened and suffixed with a digest of the full name, so distinct
// pools never share a name.
func RunName(pool, hash string) string {
	return runName(pool, hash, "")
}

// RetryRunName returns the name of the run that rebuilds the same inputs because the PoolImage's
// retry annotation was set to token: RunName with a suffix derived from the token, at most 44
// characters. The same token always gives the same name, so a restarted controller finds the
// retry it already started instead of starting another.
func RetryRunName(pool, hash, token string) string {
	if token == "" {
		return RunName(pool, hash)
	}
	sum := sha256.Sum256([]byte(token))
	return runName(pool, hash, "-r"+hex.EncodeToString(sum[:])[:5])
}

// PrebuildRunName returns the name of the run that builds inputs hash for pool ahead of a cluster
// upgrade (a prebuild): RunName with the suffix "-p". Its own name keeps it apart from the build
// of the same inputs at the upgrade, which runs only when the prebuild left no image (it failed
// or was cancelled).
func PrebuildRunName(pool, hash string) string {
	return runName(pool, hash, "-p")
}

// AutoRetryRunName returns the name of the one automatic retry of a failed build of inputs hash
// for pool (a rebuild on a new base image that failed): RunName with the suffix "-a1".
func AutoRetryRunName(pool, hash string) string {
	return runName(pool, hash, "-a1")
}

func runName(pool, hash, suffix string) string {
	h := dnsLabelChars(hash)
	if len(h) > runHashChars {
		h = h[:runHashChars]
	}
	p := dnsLabelChars(pool)
	budget := MaxRunNameLength - len("ocl-") - len("-") - len(h) - len(suffix)
	if len(p) > budget {
		sum := sha256.Sum256([]byte(pool))
		p = strings.TrimRight(p[:budget-7], "-") + "-" + hex.EncodeToString(sum[:])[:6]
	}
	return "ocl-" + p + "-" + h + suffix
}

// dnsLabelChars lowercases s and replaces every character that is not [a-z0-9-] by '-',
// trimming dashes at both ends.
func dnsLabelChars(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

// PoolLabelValue is the value of the layering.ocl-pipelines.dev/pool label for pool (the name,
// shortened when it is longer than a label value may be).
func PoolLabelValue(pool string) string {
	return labelValue(pool)
}

// labelValue returns s if it is a valid label value (≤ 63 characters), else a prefix of it
// suffixed with a digest of s.
func labelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:52], "-.") + "-" + hex.EncodeToString(sum[:])[:10]
}

// Labels returns the labels of the PipelineRun that builds inputs hash for the pool of
// PoolImage poolImage. The controller finds runs by these labels, so runs re-run from the
// dashboard (which drops owner references) still count. Render adds tekton.dev/pipeline, the
// name of the Pipeline the run references.
func Labels(poolImage, pool, hash string) map[string]string {
	return map[string]string{
		layering.PoolLabel:             labelValue(pool),
		layering.PoolImageLabel:        labelValue(poolImage),
		layering.InputsHashLabel:       hash,
		"app.kubernetes.io/managed-by": layering.ManagedByValue,
		"app.kubernetes.io/part-of":    layering.ManagedByValue,
	}
}
