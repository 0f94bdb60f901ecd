package metrics_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

type point struct {
	attrs map[string]string
	value float64
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	attrs := func(s attribute.Set) map[string]string {
		m := map[string]string{}
		for _, kv := range s.ToSlice() {
			m[string(kv.Key)] = kv.Value.AsString()
		}
		return m
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != metrics.MeterName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, metrics.MeterName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs(p.Attributes), float64(p.Value)})
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs(p.Attributes), float64(p.Value)})
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs(p.Attributes), p.Value})
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs(p.Attributes), p.Sum})
				}
			}
		}
	}
	return out
}

func poolImage(name, pool string, f func(*v1alpha1.PoolImageStatus)) *v1alpha1.PoolImage {
	pi := &v1alpha1.PoolImage{ObjectMeta: metav1.ObjectMeta{Namespace: "ocl", Name: name},
		Spec: v1alpha1.PoolImageSpec{MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: pool}}}
	pi.Status.InitializeConditions()
	f(&pi.Status)
	return pi
}

// The gauges are computed from the PoolImages' status at collection time: out of date since the
// UpToDate condition turned False, failed with the failed run's task and step, pending and
// running counts, and the newest successful build's time; a deleted PoolImage leaves no series.
func TestGaugesFollowStatus(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	lastOK := now.Add(-3 * time.Hour)
	outdated := poolImage("infra", "infra", func(st *v1alpha1.PoolImageStatus) {
		st.CurrentImage = "r/infra@sha256:1"
		st.CurrentInputs = &v1alpha1.BuildInputs{BaseImage: "base@sha256:old"}
		st.MarkUpToDate("base@sha256:new")
		for i := range st.Conditions {
			if st.Conditions[i].Type == v1alpha1.ConditionUpToDate {
				st.Conditions[i].LastTransitionTime = apis.VolatileTime{Inner: metav1.NewTime(now.Add(-40 * time.Minute))}
			}
		}
		st.MarkBuilding("ocl-infra-123")
		st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(now.Add(-30 * time.Minute)), BaseImage: "base@sha256:new"}
		st.MarkPoolHeld(v1alpha1.ReasonHoldTimeout, "held too long")
	})
	failed := poolImage("worker", "worker", func(st *v1alpha1.PoolImageStatus) {
		f := &v1alpha1.BuildFailure{Task: "build", Step: "push", Reason: "Failed"}
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: "ocl-worker-abc", Failure: f}
		st.MarkBuildFailed(f)
	})
	pending := poolImage("gpu", "gpu", func(st *v1alpha1.PoolImageStatus) {
		st.Pending = &v1alpha1.PendingBuild{InputsHash: "h", Since: metav1.NewTime(now)}
	})
	pis := []*v1alpha1.PoolImage{outdated, failed, pending}
	reader := sdkmetric.NewManualReader()
	_, err := metrics.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), metrics.Source{
		PoolImages: func() ([]*v1alpha1.PoolImage, error) { return pis, nil },
		LastSuccess: func(pi *v1alpha1.PoolImage) time.Time {
			if pi.Name == "worker" {
				return lastOK
			}
			return time.Time{}
		},
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	want := map[string][]point{
		"ocl_pipelines_pool_out_of_date": {
			{map[string]string{"poolimage": "ocl/infra", "pool": "infra"}, 2400},
			{map[string]string{"poolimage": "ocl/worker", "pool": "worker"}, 0},
			{map[string]string{"poolimage": "ocl/gpu", "pool": "gpu"}, 0},
		},
		"ocl_pipelines_pool_build_failed": {
			{map[string]string{"poolimage": "ocl/worker", "pool": "worker", "pipelinerun": "ocl-worker-abc", "task": "build", "step": "push"}, 1},
		},
		"ocl_pipelines_last_successful_build_timestamp": {
			{map[string]string{"poolimage": "ocl/worker", "pool": "worker"}, float64(lastOK.Unix())},
		},
		"ocl_pipelines_pool_held": {
			{map[string]string{"poolimage": "ocl/infra", "pool": "infra", "reason": "HoldTimeout"}, 1800},
		},
		"ocl_pipelines_builds_pending": {{map[string]string{}, 1}},
		"ocl_pipelines_builds_running": {{map[string]string{}, 1}},
	}
	for name, points := range want {
		if !samePoints(got[name], points) {
			t.Errorf("%s = %v, want %v", name, got[name], points)
		}
	}

	// The failed PoolImage is deleted: its series go with it.
	pis = pis[:1]
	got = collect(t, reader)
	if len(got["ocl_pipelines_pool_build_failed"]) != 0 || len(got["ocl_pipelines_pool_out_of_date"]) != 1 {
		t.Errorf("after deletion: build_failed %v, out_of_date %v; want none and one", got["ocl_pipelines_pool_build_failed"], got["ocl_pipelines_pool_out_of_date"])
	}
}

func samePoints(got, want []point) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if g.value == w.value && len(g.attrs) == len(w.attrs) && func() bool {
				for k, v := range w.attrs {
					if g.attrs[k] != v {
						return false
					}
				}
				return true
			}() {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Counters carry the labels the alerts select on; a nil Recorder records nothing and does not
// panic (reconcilers built without metrics).
func TestCountersAndNilRecorder(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	rec, err := metrics.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), metrics.Source{
		PoolImages: func() ([]*v1alpha1.PoolImage, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pi := poolImage("worker", "worker", func(*v1alpha1.PoolImageStatus) {})
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	rec.BuildStarted(ctx, pi, "upgrade")
	rec.BuildFinished(ctx, pi, metrics.ResultFailed, "Failed", &v1alpha1.BuildFailure{Task: "build", Step: "push"}, start, start.Add(90*time.Second))
	rec.BuildFinished(ctx, pi, metrics.ResultFailed, "", &v1alpha1.BuildFailure{Reason: "PipelineRunDeleted"}, time.Time{}, time.Time{})
	rec.Superseded(ctx, pi)
	got := collect(t, reader)
	for name, want := range map[string][]point{
		"ocl_pipelines_builds_started": {{map[string]string{"poolimage": "ocl/worker", "pool": "worker", "trigger": "upgrade"}, 1}},
		"ocl_pipelines_builds": {
			{map[string]string{"poolimage": "ocl/worker", "pool": "worker", "result": "failed", "reason": "Failed", "task": "build", "step": "push"}, 1},
			{map[string]string{"poolimage": "ocl/worker", "pool": "worker", "result": "failed", "reason": "PipelineRunDeleted", "task": "", "step": ""}, 1},
		},
		"ocl_pipelines_build_duration":    {{map[string]string{"poolimage": "ocl/worker", "pool": "worker", "result": "failed"}, 90}},
		"ocl_pipelines_builds_superseded": {{map[string]string{"poolimage": "ocl/worker", "pool": "worker"}, 1}},
	} {
		if !samePoints(got[name], want) {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	var none *metrics.Recorder
	none.BuildStarted(ctx, pi, "spec")
	none.BuildFinished(ctx, pi, metrics.ResultSucceeded, "Succeeded", nil, start, start)
	none.Superseded(ctx, pi)
	if err := none.Close(); err != nil {
		t.Fatal(err)
	}
}
