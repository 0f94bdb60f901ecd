package poolimage

import (
	"context"
	"net"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"

	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// PullSecretReader gives the registries the cluster's global pull secret has credentials for;
// *secrets.PullSecretHosts is the controller's.
type PullSecretReader interface {
	// Hosts returns the registries, or why they are unknown.
	Hosts() ([]string, error)
}

// preflight sets FirstBootPullable: a new node pulls the pool's image at first boot, before
// cluster DNS and the service network exist, with the cluster's global pull secret. An image
// behind an in-cluster Service, or on a registry that pull secret has no credentials for, would
// leave new nodes unable to join the pool. Existing nodes are not affected (they pull with the
// same secret, but through cluster DNS), so this warns and does not block.
func (r *Reconciler) preflight(ctx context.Context, pi *v1alpha1.PoolImage) {
	if r.PullSecret == nil {
		return
	}
	st := &pi.Status
	was := st.GetCondition(v1alpha1.ConditionFirstBootPullable)
	ref, err := name.ParseReference(pi.Spec.ImagePushSpec)
	if err != nil {
		return // Validate refused it already
	}
	registry := ref.Context().RegistryStr()
	repo := ref.Context().Name()
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	global := secrets.GlobalPullSecretNamespace + "/" + secrets.GlobalPullSecretName
	switch {
	case strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, ".svc.cluster.local"):
		st.MarkFirstBootPullable(corev1.ConditionFalse, v1alpha1.ReasonInClusterRegistry,
			"spec.imagePushSpec is on %s, a Service inside the cluster: a new node pulls the image at first boot, before cluster DNS and the service network exist, and could not join the pool. Push to an address the nodes reach directly (for the internal registry, its route), with credentials in the global pull secret %s",
			registry, global)
	default:
		hosts, err := r.PullSecret.Hosts()
		if err != nil {
			st.MarkFirstBootPullable(corev1.ConditionUnknown, v1alpha1.ReasonPullSecretUnknown,
				"cannot check that new nodes can pull %s at first boot: %v", repo, err)
			return
		}
		if !secrets.HasCredentials(hosts, repo) {
			st.MarkFirstBootPullable(corev1.ConditionFalse, v1alpha1.ReasonNoCredentials,
				"the global pull secret %s has no credentials for %s: new nodes pull the image with it at first boot and could not join the pool. Add them: `oc get secret/pull-secret -n openshift-config --template='{{index .data \".dockerconfigjson\" | base64decode}}' > pull.json && oc registry login --registry=%s --auth-basic=<user>:<password> --to=pull.json && oc set data secret/pull-secret -n openshift-config --from-file=.dockerconfigjson=pull.json`",
				global, registry, registry)
			break
		}
		st.MarkFirstBootPullable(corev1.ConditionTrue, v1alpha1.ReasonPullable,
			"new nodes can pull %s at first boot with the global pull secret %s", repo, global)
		return
	}
	if now := st.GetCondition(v1alpha1.ConditionFirstBootPullable); was == nil || was.Status != now.Status || was.Reason != now.Reason {
		r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonFirstBootNotPullable, "%s", now.Message)
	}
}

var _ PullSecretReader = (*secrets.PullSecretHosts)(nil)
