package poolimage

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/controller"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// scratch is what one reconcile remembers while it runs: the runs it cancelled (so the cancel
// before a create and the supersede after it do not both patch a run), and whether the
// PoolImage it reconciles is the API server's current one.
type scratch struct {
	cancelled map[string]bool
	fresh     int // 0 not asked yet, 1 current, 2 stale
}

type scratchKey struct{}

// withScratch returns ctx with an empty scratch for one reconcile.
func withScratch(ctx context.Context) context.Context {
	return context.WithValue(ctx, scratchKey{}, &scratch{cancelled: map[string]bool{}})
}

// scratchOf returns the reconcile's scratch (a throwaway one outside a reconcile).
func scratchOf(ctx context.Context) *scratch {
	if s, ok := ctx.Value(scratchKey{}).(*scratch); ok {
		return s
	}
	return &scratch{cancelled: map[string]bool{}}
}

// staleRequeue is how soon a reconcile that read an outdated PoolImage from the cache runs again
// (the informer delivers the newer one meanwhile, and that enqueues it too).
const staleRequeue = time.Second

// errStale says the cache's PoolImage is older than the API server's: the reconcile acts on
// nothing irreversible (no run created, none cancelled) and runs again.
var errStale = controller.NewRequeueAfter(staleRequeue)

// current reports whether pi, as the cache gave it, has the spec the API server has now (same
// generation). It asks the API server once per reconcile, and only before an act that cannot be
// taken back: creating or cancelling a run. A reconcile on a stale spec would build, or cancel
// a prebuild for, inputs the admin has already replaced.
func (r *Reconciler) current(ctx context.Context, pi *v1alpha1.PoolImage) (bool, error) {
	s := scratchOf(ctx)
	if s.fresh == 0 {
		if r.PoolImageClient == nil {
			s.fresh = 1
		} else {
			live, err := r.PoolImageClient.LayeringV1alpha1().PoolImages(pi.Namespace).Get(ctx, pi.Name, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("get PoolImage %s/%s: %w", pi.Namespace, pi.Name, err)
			}
			s.fresh = 1
			if live.Generation != pi.Generation {
				s.fresh = 2
			}
		}
	}
	return s.fresh == 1, nil
}
