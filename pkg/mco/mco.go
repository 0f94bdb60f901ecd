package mco

import (
	"fmt"
	"sort"
	"sync"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
)

// Well-known names of the MCO.
const (
	// RoleLabel is the MachineConfig label the MCO's pools select by.
	RoleLabel = "machineconfiguration.openshift.io/role"
	// GeneratedByControllerVersionAnnotation marks the MCO's own MachineConfigs (rendered
	// configs, templates); from 4.21 the merge skips their osImageURL.
	GeneratedByControllerVersionAnnotation = "machineconfiguration.openshift.io/generated-by-controller-version"
	// ControllerConfigName is the name of the MCO's cluster-wide ControllerConfig.
	ControllerConfigName = "machine-config-controller"
	// MasterPool and WorkerPool are the MCO's two built-in pools.
	MasterPool = "master"
	WorkerPool = "worker"
)

// mcSelector is pool's parsed machineConfigSelector; nil (it selects nothing) when it is unset,
// empty or invalid.
func mcSelector(pool *mcfgv1.MachineConfigPool) labels.Selector {
	if pool.Spec.MachineConfigSelector == nil {
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(pool.Spec.MachineConfigSelector)
	if err != nil || s.Empty() {
		return nil
	}
	return s
}

// PoolMachineConfigs returns the MachineConfigs pool selects, in the order the MCO merges them
// (pkg/controller/common/helpers.go, MergeMachineConfigs: those labelled for the worker role
// first, then the others, each sorted by name).
func PoolMachineConfigs(pool *mcfgv1.MachineConfigPool, all []*mcfgv1.MachineConfig) []*mcfgv1.MachineConfig {
	var worker, other []*mcfgv1.MachineConfig
	sel := mcSelector(pool) // parsed once: a cluster has hundreds of MachineConfigs
	if sel == nil {
		return nil
	}
	for _, mc := range all {
		if !sel.Matches(labels.Set(mc.Labels)) {
			continue
		}
		if mc.Labels[RoleLabel] == WorkerPool {
			worker = append(worker, mc)
		} else {
			other = append(other, mc)
		}
	}
	byName := func(s []*mcfgv1.MachineConfig) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	}
	byName(worker)
	byName(other)
	return append(worker, other...)
}

// EffectiveOSImage returns the osImageURL the MCO renders for pool from the MachineConfigs it
// selects: the last non-empty osImageURL in merge order, skipping the MCO's own MachineConfigs
// (annotated generated-by-controller-version), else the release's base image (the
// ControllerConfig's baseOSContainerImage, pkg/controller/common GetDefaultBaseImageContainer).
// from names the MachineConfig that sets it ("" for the release's image).
func EffectiveOSImage(pool *mcfgv1.MachineConfigPool, all []*mcfgv1.MachineConfig, releaseImage string) (image, from string) {
	image = releaseImage
	for _, mc := range PoolMachineConfigs(pool, all) {
		if _, ok := mc.Annotations[GeneratedByControllerVersionAnnotation]; ok {
			continue
		}
		if mc.Spec.OSImageURL != "" {
			image, from = mc.Spec.OSImageURL, mc.Name
		}
	}
	return image, from
}

// poolSelector is a pool with its parsed nodeSelector (nil: it matches no node).
type poolSelector struct {
	pool *mcfgv1.MachineConfigPool
	sel  labels.Selector
}

// Selectors remembers pools' parsed selectors, by the pool object the informer cache holds
// (a changed pool is a new object): parsing them (label keys and values are validated by
// regular expressions) was most of a reconcile's CPU with a few hundred pools, as every
// reconcile weighs every pool the way the MCO merges. The zero value is ready; a nil one parses
// every time.
type Selectors struct {
	mu sync.Mutex
	m  map[selectorKey]labels.Selector
}

type selectorKey struct {
	pool *mcfgv1.MachineConfigPool
	node bool
}

// get returns pool's parsed nodeSelector (node) or machineConfigSelector; nil (it matches
// nothing) when unset, empty or invalid.
func (s *Selectors) get(pool *mcfgv1.MachineConfigPool, node bool) labels.Selector {
	ls := pool.Spec.MachineConfigSelector
	if node {
		ls = pool.Spec.NodeSelector
	}
	parse := func() labels.Selector {
		if ls == nil {
			return nil
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || sel.Empty() {
			return nil
		}
		return sel
	}
	if s == nil {
		return parse()
	}
	k := selectorKey{pool: pool, node: node}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sel, ok := s.m[k]; ok {
		return sel
	}
	if s.m == nil || len(s.m) > 4096 { // mostly replaced objects by then: start over
		s.m = map[selectorKey]labels.Selector{}
	}
	sel := parse()
	s.m[k] = sel
	return sel
}

// nodeSelectors parses the pools' nodeSelectors (through memo). Pools with an empty or invalid
// nodeSelector match no node.
func nodeSelectors(memo *Selectors, pools []*mcfgv1.MachineConfigPool) []poolSelector {
	out := make([]poolSelector, 0, len(pools))
	for _, p := range pools {
		out = append(out, poolSelector{pool: p, sel: memo.get(p, true)})
	}
	return out
}

// primaryPool returns the pool the MCO manages node in (pkg/controller/common/helpers.go,
// GetPoolsForNode and GetPrimaryPoolForNode): of the pools whose nodeSelector matches, a custom
// pool wins over worker, master wins over a custom pool, and a node in two custom pools is
// managed by none (nil).
func primaryPool(node *corev1.Node, pools []poolSelector) *mcfgv1.MachineConfigPool {
	var master, worker *mcfgv1.MachineConfigPool
	var custom []*mcfgv1.MachineConfigPool
	set := labels.Set(node.Labels)
	for _, ps := range pools {
		if ps.sel == nil || !ps.sel.Matches(set) {
			continue
		}
		switch ps.pool.Name {
		case MasterPool:
			master = ps.pool
		case WorkerPool:
			worker = ps.pool
		default:
			custom = append(custom, ps.pool)
		}
	}
	switch {
	case len(custom) > 1:
		return nil
	case master != nil:
		return master
	case len(custom) == 1:
		return custom[0]
	}
	return worker
}

// NodesOf returns the nodes the MCO manages in pool (their primary pool), of nodes. Only nodes
// that pool's nodeSelector matches can be, so the others are not weighed against every pool.
func NodesOf(memo *Selectors, pool *mcfgv1.MachineConfigPool, nodes []*corev1.Node, pools []*mcfgv1.MachineConfigPool) []*corev1.Node {
	sels := nodeSelectors(memo, pools)
	var own labels.Selector
	for _, ps := range sels {
		if ps.pool.Name == pool.Name {
			own = ps.sel
		}
	}
	if own == nil {
		return nil
	}
	var out []*corev1.Node
	for _, n := range nodes {
		if !own.Matches(labels.Set(n.Labels)) {
			continue
		}
		if p := primaryPool(n, sels); p != nil && p.Name == pool.Name {
			out = append(out, n)
		}
	}
	return out
}

// ReachedPools returns the pools that run the image of MachineConfig mc (named name, with
// labels l) once it exists: the pools that select it and in which it wins the merge. all are
// the cluster's MachineConfigs (mc replaces the one of that name). The first pool is target when
// it is among them.
func ReachedPools(memo *Selectors, target string, mc *mcfgv1.MachineConfig, pools []*mcfgv1.MachineConfigPool, all []*mcfgv1.MachineConfig) []*mcfgv1.MachineConfigPool {
	merged := make([]*mcfgv1.MachineConfig, 0, len(all)+1)
	for _, o := range all {
		if o.Name != mc.Name {
			merged = append(merged, o)
		}
	}
	merged = append(merged, mc)
	var out []*mcfgv1.MachineConfigPool
	for _, p := range pools {
		if sel := memo.get(p, false); sel == nil || !sel.Matches(labels.Set(mc.Labels)) {
			continue
		}
		if _, from := EffectiveOSImage(p, merged, ""); from == mc.Name {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name == target && out[j].Name != target })
	return out
}

// ImageAfterRemoval describes what pool runs once MachineConfig name is gone: the image of the
// MachineConfig that then wins the merge, or the release's image.
func ImageAfterRemoval(pool *mcfgv1.MachineConfigPool, name string, all []*mcfgv1.MachineConfig) string {
	rest := make([]*mcfgv1.MachineConfig, 0, len(all))
	for _, o := range all {
		if o.Name != name {
			rest = append(rest, o)
		}
	}
	image, from := EffectiveOSImage(pool, rest, "")
	if from == "" {
		return "the release's image"
	}
	src := "MachineConfig " + from
	if ns, n := rest[indexOf(rest, from)].Annotations[layering.MachineConfigPoolImageNamespaceAnnotation], rest[indexOf(rest, from)].Annotations[layering.MachineConfigPoolImageNameAnnotation]; n != "" {
		src += fmt.Sprintf(" of PoolImage %s/%s", ns, n)
	}
	return fmt.Sprintf("%s (from %s, which it also selects)", image, src)
}

func indexOf(mcs []*mcfgv1.MachineConfig, name string) int {
	for i, mc := range mcs {
		if mc.Name == name {
			return i
		}
	}
	return -1
}

// RenderDegraded returns the message of the pool's RenderDegraded condition when it is True.
func RenderDegraded(pool *mcfgv1.MachineConfigPool) (string, bool) {
	for _, c := range pool.Status.Conditions {
		if c.Type == mcfgv1.MachineConfigPoolRenderDegraded && c.Status == corev1.ConditionTrue {
			return c.Message, true
		}
	}
	return "", false
}
