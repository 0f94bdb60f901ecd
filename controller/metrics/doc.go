// Package metrics defines the controller's OpenTelemetry instruments, exported by knative's
// sharedmain on the Prometheus endpoint (config-observability, METRICS_PROMETHEUS_PORT):
//
//	ocl_pipelines_builds_started_total{poolimage,pool,trigger}            counter
//	ocl_pipelines_builds_total{poolimage,pool,result,reason,task,step}    counter (finished builds)
//	ocl_pipelines_build_duration_seconds{poolimage,pool,result}           histogram
//	ocl_pipelines_builds_superseded_total{poolimage,pool}                 counter
//	ocl_pipelines_holds_released_early_total{poolimage,pool,reason}       counter (a hold ended without the image)
//	ocl_pipelines_builds_pending                                          gauge (in their quiet period)
//	ocl_pipelines_builds_running                                          gauge
//	ocl_pipelines_last_successful_build_timestamp_seconds{poolimage,pool} gauge
//	ocl_pipelines_pool_out_of_date_seconds{poolimage,pool}                gauge (0 when up to date)
//	ocl_pipelines_pool_held_seconds{poolimage,pool,reason}                gauge (while the pool is held)
//	ocl_pipelines_pool_build_failed{poolimage,pool,pipelinerun,task,step} gauge (1 while failed)
//
// Counters and the histogram are recorded with the event of the same transition, once: each is
// tied to a write the API server accepted with the object's resourceVersion as a precondition
// (a run created, a run cancelled, a run's outcome marked reported, a pool unpaused); gauges are computed at scrape time from the PoolImages' status,
// so they survive restarts and never leave a stale series behind a deleted PoolImage.
// poolimage is "<namespace>/<name>" (not "namespace", which Prometheus sets to the scraped pod's).
package metrics
