package poolimage

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"knative.dev/pkg/controller"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

type fakePullSecret struct {
	hosts []string
	err   error
}

func (f fakePullSecret) Hosts() ([]string, error) { return f.hosts, f.err }

// TestFirstBootPullable: every preflight case, and a Warning event only when the answer turns
// bad (not on every reconcile).
func TestFirstBootPullable(t *testing.T) {
	global := fakePullSecret{hosts: []string{"quay.io", "https://registry.example.com/v1/", "cloud.openshift.com"}}
	for _, c := range []struct {
		name, push   string
		secret       fakePullSecret
		status       corev1.ConditionStatus
		reason, want string
	}{
		{"credentials for the registry", "registry.example.com/os/worker:latest", global, corev1.ConditionTrue, v1alpha1.ReasonPullable,
			"new nodes can pull registry.example.com/os/worker at first boot with the global pull secret openshift-config/pull-secret"},
		{"credentials for the repository's path", "quay.io/team/os:latest", fakePullSecret{hosts: []string{"quay.io/team"}}, corev1.ConditionTrue, v1alpha1.ReasonPullable, "new nodes can pull"},
		{"credentials for another repository only", "quay.io/other/os:latest", fakePullSecret{hosts: []string{"quay.io/team"}}, corev1.ConditionFalse, v1alpha1.ReasonNoCredentials,
			"the global pull secret openshift-config/pull-secret has no credentials for quay.io:"},
		{"Docker Hub under its other names", "docker.io/team/os:latest", fakePullSecret{hosts: []string{"https://index.docker.io/v1/"}}, corev1.ConditionTrue, v1alpha1.ReasonPullable, "new nodes can pull"},
		{"the internal registry's Service", "image-registry.openshift-image-registry.svc:5000/ocl/os:latest", global, corev1.ConditionFalse, v1alpha1.ReasonInClusterRegistry,
			"spec.imagePushSpec is on image-registry.openshift-image-registry.svc:5000, a Service inside the cluster: a new node pulls the image at first boot, before cluster DNS"},
		{"a registry without credentials", "registry.internal.example.com:5000/os/worker:latest", global, corev1.ConditionFalse, v1alpha1.ReasonNoCredentials,
			"`oc get secret/pull-secret -n openshift-config --template='{{index .data \".dockerconfigjson\" | base64decode}}' > pull.json && oc registry login --registry=registry.internal.example.com:5000 --auth-basic=<user>:<password> --to=pull.json && oc set data secret/pull-secret -n openshift-config --from-file=.dockerconfigjson=pull.json`"},
		{"global pull secret unreadable", "registry.example.com/os/worker:latest", fakePullSecret{err: errors.New("cannot read Secret openshift-config/pull-secret: forbidden")}, corev1.ConditionUnknown, v1alpha1.ReasonPullSecretUnknown,
			"cannot check that new nodes can pull registry.example.com/os/worker at first boot: cannot read Secret openshift-config/pull-secret: forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := record.NewFakeRecorder(10)
			ctx := controller.WithEventRecorder(context.Background(), rec)
			r := &Reconciler{PullSecret: c.secret}
			pi := poolImage(func(p *v1alpha1.PoolImage) { p.Spec.ImagePushSpec = c.push })
			pi.Status.InitializeConditions()
			r.preflight(ctx, pi)
			got := pi.Status.GetCondition(v1alpha1.ConditionFirstBootPullable)
			if got == nil || got.Status != c.status || got.Reason != c.reason || !strings.Contains(got.Message, c.want) {
				t.Fatalf("FirstBootPullable = %+v\nwant %s %s containing %q", got, c.status, c.reason, c.want)
			}
			if pi.Status.GetCondition(v1alpha1.ConditionReady).IsFalse() {
				t.Error("FirstBootPullable gates Ready; it is informational")
			}
			events := len(rec.Events)
			if want := map[bool]int{true: 1, false: 0}[c.status == corev1.ConditionFalse]; events != want {
				t.Errorf("%d events, want %d", events, want)
			}
			r.preflight(ctx, pi) // the next reconcile: same answer, no new event
			if len(rec.Events) != events {
				t.Errorf("a repeated answer recorded another event")
			}
		})
	}
	// Without a reader (a library user's reconciler), nothing is set.
	pi := poolImage()
	(&Reconciler{}).preflight(context.Background(), pi)
	if pi.Status.GetCondition(v1alpha1.ConditionFirstBootPullable) != nil {
		t.Error("FirstBootPullable set without a pull secret reader")
	}
}
