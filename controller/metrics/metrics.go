package metrics

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// MeterName is the instrumentation scope of the controller's metrics.
const MeterName = "github.com/ocl-pipelines/ocl-pipelines/controller"

// Results of a finished build.
const (
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
)

// Source gives the gauges their data at scrape time. Both functions must be safe to call
// concurrently with reconciles (listers are).
type Source struct {
	// PoolImages lists every PoolImage the controller reconciles.
	PoolImages func() ([]*v1alpha1.PoolImage, error)
	// LastSuccess returns when the newest successful build of pi's pool finished (zero if none).
	LastSuccess func(pi *v1alpha1.PoolImage) time.Time
	// Now is the clock of the out-of-date gauge.
	Now func() time.Time
}

// Recorder records the controller's build metrics. The zero value is not usable: use New. A nil
// *Recorder records nothing, so reconcilers built without metrics (table tests) need no setup.
type Recorder struct {
	started    metric.Int64Counter
	finished   metric.Int64Counter
	duration   metric.Float64Histogram
	superseded metric.Int64Counter
	released   metric.Int64Counter
	reg        metric.Registration
}

// New creates the instruments on mp's meter and registers the gauges' callback on src.
func New(mp metric.MeterProvider, src Source) (*Recorder, error) {
	m := mp.Meter(MeterName)
	r := &Recorder{}
	var err error
	if r.started, err = m.Int64Counter("ocl_pipelines_builds_started",
		metric.WithDescription("Builds (PipelineRuns) started, by trigger: spec, upgrade or retry.")); err != nil {
		return nil, fmt.Errorf("create counter builds_started: %w", err)
	}
	if r.finished, err = m.Int64Counter("ocl_pipelines_builds",
		metric.WithDescription("Finished builds by result, Tekton reason and, for failures, the failed task and step.")); err != nil {
		return nil, fmt.Errorf("create counter builds: %w", err)
	}
	if r.duration, err = m.Float64Histogram("ocl_pipelines_build_duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of finished builds, from the PipelineRun's start to its completion."),
		metric.WithExplicitBucketBoundaries(30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200)); err != nil {
		return nil, fmt.Errorf("create histogram build_duration: %w", err)
	}
	if r.superseded, err = m.Int64Counter("ocl_pipelines_builds_superseded",
		metric.WithDescription("Running builds cancelled because the pool's inputs changed again.")); err != nil {
		return nil, fmt.Errorf("create counter builds_superseded: %w", err)
	}
	if r.released, err = m.Int64Counter("ocl_pipelines_holds_released_early",
		metric.WithDescription("Holds of a pool that ended before its rebuilt image was promoted and rendered, by reason: HoldTimeout, RebuildFailed, RenderDegraded. The pool took the release's configuration on its old image (a second reboot follows).")); err != nil {
		return nil, fmt.Errorf("create counter holds_released_early: %w", err)
	}
	pending, err := m.Int64ObservableGauge("ocl_pipelines_builds_pending",
		metric.WithDescription("PoolImages whose new inputs wait for the quiet period before their build starts."))
	if err != nil {
		return nil, fmt.Errorf("create gauge builds_pending: %w", err)
	}
	running, err := m.Int64ObservableGauge("ocl_pipelines_builds_running",
		metric.WithDescription("PoolImages whose build is running."))
	if err != nil {
		return nil, fmt.Errorf("create gauge builds_running: %w", err)
	}
	lastSuccess, err := m.Float64ObservableGauge("ocl_pipelines_last_successful_build_timestamp",
		metric.WithUnit("s"),
		metric.WithDescription("Unix time when the newest successful build of the pool finished; time() minus it is the time since."))
	if err != nil {
		return nil, fmt.Errorf("create gauge last_successful_build_timestamp: %w", err)
	}
	outOfDate, err := m.Float64ObservableGauge("ocl_pipelines_pool_out_of_date",
		metric.WithUnit("s"),
		metric.WithDescription("Seconds since the base image moved past the pool's promoted image (0 while the pool runs an image built on its current base)."))
	if err != nil {
		return nil, fmt.Errorf("create gauge pool_out_of_date: %w", err)
	}
	failed, err := m.Int64ObservableGauge("ocl_pipelines_pool_build_failed",
		metric.WithDescription("1 while the build of the pool's current inputs has failed, with the failed PipelineRun, task and step."))
	if err != nil {
		return nil, fmt.Errorf("create gauge pool_build_failed: %w", err)
	}
	held, err := m.Float64ObservableGauge("ocl_pipelines_pool_held",
		metric.WithUnit("s"),
		metric.WithDescription("Seconds the controller has held the pool paused for a rebuild on a new base image, with the PoolHeld reason (HeldForRebuild, AwaitingRender, HoldTimeout); absent when not held."))
	if err != nil {
		return nil, fmt.Errorf("create gauge pool_held: %w", err)
	}
	r.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		pis, err := src.PoolImages()
		if err != nil {
			return fmt.Errorf("list PoolImages: %w", err)
		}
		now := time.Now()
		if src.Now != nil {
			now = src.Now()
		}
		var nPending, nRunning int64
		for _, pi := range pis {
			st := &pi.Status
			if st.Pending != nil {
				nPending++
			}
			bs := st.GetCondition(v1alpha1.ConditionBuildSucceeded)
			if bs != nil && bs.IsUnknown() && bs.Reason == v1alpha1.ReasonBuilding {
				nRunning++
			}
			attrs := metric.WithAttributes(poolAttrs(pi)...)
			if src.LastSuccess != nil {
				if t := src.LastSuccess(pi); !t.IsZero() {
					o.ObserveFloat64(lastSuccess, float64(t.UnixNano())/1e9, attrs)
				}
			}
			var behind float64
			if since := st.OutOfDateSince(); !since.IsZero() {
				behind = max(now.Sub(since).Seconds(), 0)
			}
			o.ObserveFloat64(outOfDate, behind, attrs)
			if c := st.GetCondition(v1alpha1.ConditionPoolHeld); c != nil && c.IsTrue() && st.Hold != nil {
				o.ObserveFloat64(held, max(now.Sub(st.Hold.Since.Time).Seconds(), 0),
					metric.WithAttributes(append(poolAttrs(pi), attribute.String("reason", c.Reason))...))
			}
			if bs != nil && bs.IsFalse() && st.LatestBuild != nil && st.LatestBuild.Failure != nil {
				f := st.LatestBuild.Failure
				o.ObserveInt64(failed, 1, metric.WithAttributes(append(poolAttrs(pi),
					attribute.String("pipelinerun", st.LatestBuild.PipelineRun),
					attribute.String("task", f.Task), attribute.String("step", f.Step))...))
			}
		}
		o.ObserveInt64(pending, nPending)
		o.ObserveInt64(running, nRunning)
		return nil
	}, pending, running, lastSuccess, outOfDate, failed, held)
	if err != nil {
		return nil, fmt.Errorf("register gauge callback: %w", err)
	}
	return r, nil
}

// Close unregisters the gauges' callback.
func (r *Recorder) Close() error {
	if r == nil || r.reg == nil {
		return nil
	}
	return r.reg.Unregister()
}

func poolAttrs(pi *v1alpha1.PoolImage) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("poolimage", pi.Namespace+"/"+pi.Name),
		attribute.String("pool", pi.Spec.MachineConfigPool.Name),
	}
}

// BuildStarted counts a PipelineRun started for pi with trigger.
func (r *Recorder) BuildStarted(ctx context.Context, pi *v1alpha1.PoolImage, trigger string) {
	if r == nil {
		return
	}
	r.started.Add(ctx, 1, metric.WithAttributes(append(poolAttrs(pi), attribute.String("trigger", trigger))...))
}

// BuildFinished counts a finished build of pi and records its duration (when both times are
// known). f describes a failure (nil for a success); reason is Tekton's reason of the run.
func (r *Recorder) BuildFinished(ctx context.Context, pi *v1alpha1.PoolImage, result, reason string, f *v1alpha1.BuildFailure, start, end time.Time) {
	if r == nil {
		return
	}
	var task, step string
	if f != nil {
		task, step = f.Task, f.Step
		if reason == "" {
			reason = f.Reason
		}
	}
	r.finished.Add(ctx, 1, metric.WithAttributes(append(poolAttrs(pi),
		attribute.String("result", result), attribute.String("reason", reason),
		attribute.String("task", task), attribute.String("step", step))...))
	if !start.IsZero() && !end.IsZero() && !end.Before(start) {
		r.duration.Record(ctx, end.Sub(start).Seconds(), metric.WithAttributes(append(poolAttrs(pi),
			attribute.String("result", result))...))
	}
}

// Superseded counts a running build of pi cancelled because its inputs are out of date.
func (r *Recorder) Superseded(ctx context.Context, pi *v1alpha1.PoolImage) {
	if r == nil {
		return
	}
	r.superseded.Add(ctx, 1, metric.WithAttributes(poolAttrs(pi)...))
}

// HoldReleasedEarly counts a hold of pool for pi that ended before the rebuilt image was
// promoted and rendered, for reason (HoldTimeout, RebuildFailed, RenderDegraded).
func (r *Recorder) HoldReleasedEarly(ctx context.Context, pi *v1alpha1.PoolImage, pool, reason string) {
	if r == nil {
		return
	}
	r.released.Add(ctx, 1, metric.WithAttributes(attribute.String("poolimage", pi.Namespace+"/"+pi.Name),
		attribute.String("pool", pool), attribute.String("reason", reason)))
}
