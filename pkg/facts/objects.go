package facts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

// Objects is a set of cluster objects read from files (what `oc get -o yaml` prints), the
// Source of the CLI and of programs that have no cluster at hand. Secrets keep only their name,
// namespace and type: their data is dropped as they are read.
type Objects struct {
	pools            map[string]*mcfgv1.MachineConfigPool
	controllerConfig *mcfgv1.ControllerConfig
	nodes            []*corev1.Node
	machineConfigs   map[string]*mcfgv1.MachineConfig
	secrets          map[string]*corev1.Secret    // by namespace/name
	configMaps       map[string]*corev1.ConfigMap // by namespace/name
}

// Kinds are the kinds Objects takes (and List, of them).
func Kinds() []string {
	return []string{"MachineConfigPool", "ControllerConfig", "Node", "MachineConfig", "Secret", "ConfigMap"}
}

// NewObjects returns an empty set.
func NewObjects() *Objects {
	return &Objects{pools: map[string]*mcfgv1.MachineConfigPool{}, machineConfigs: map[string]*mcfgv1.MachineConfig{},
		secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}}
}

// Load reads the objects of YAML or JSON files (several documents per file, and Lists), and of
// every *.yaml, *.yml and *.json file of a directory given as a path.
func Load(paths ...string) (*Objects, error) {
	o := NewObjects()
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if err := o.Decode(f, b); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// expand returns path, or the YAML and JSON files of the directory path, sorted.
func expand(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				out = append(out, filepath.Join(path, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Decode adds the objects of one file's content; name is the file's, for messages.
func (o *Objects) Decode(name string, content []byte) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(content), 4096)
	for i := 1; ; i++ {
		var raw map[string]any
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if len(raw) == 0 {
			continue
		}
		b, err := yaml.Marshal(raw)
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if err := o.add(b); err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i, err)
		}
	}
}

// add decodes one object (or a List of them) and adds it.
func (o *Objects) add(b []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(b, &tm); err != nil {
		return err
	}
	switch tm.Kind {
	case "List", "MachineConfigPoolList", "NodeList", "MachineConfigList", "SecretList", "ConfigMapList", "ControllerConfigList":
		var l struct {
			Items []map[string]any `json:"items"`
		}
		if err := yaml.Unmarshal(b, &l); err != nil {
			return err
		}
		for _, item := range l.Items {
			ib, err := yaml.Marshal(item)
			if err != nil {
				return err
			}
			if err := o.add(ib); err != nil {
				return err
			}
		}
		return nil
	case "MachineConfigPool":
		p, err := decode[mcfgv1.MachineConfigPool](b)
		if err != nil {
			return err
		}
		o.pools[p.Name] = p
	case "ControllerConfig":
		cc, err := decode[mcfgv1.ControllerConfig](b)
		if err != nil {
			return err
		}
		if cc.Name != mco.ControllerConfigName {
			return fmt.Errorf("ControllerConfig %q: the MCO's is named %s", cc.Name, mco.ControllerConfigName)
		}
		o.controllerConfig = cc
	case "Node":
		n, err := decode[corev1.Node](b)
		if err != nil {
			return err
		}
		o.nodes = append(o.nodes, n)
	case "MachineConfig":
		mc, err := decode[mcfgv1.MachineConfig](b)
		if err != nil {
			return err
		}
		o.machineConfigs[mc.Name] = mc
	case "Secret":
		s, err := decode[corev1.Secret](b)
		if err != nil {
			return err
		}
		// Only what the inputs depend on: nothing secret is kept.
		o.secrets[s.Namespace+"/"+s.Name] = &corev1.Secret{TypeMeta: s.TypeMeta, Type: s.Type,
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace}}
	case "ConfigMap":
		cm, err := decode[corev1.ConfigMap](b)
		if err != nil {
			return err
		}
		o.configMaps[cm.Namespace+"/"+cm.Name] = cm
	default:
		return fmt.Errorf("kind %q is not a fact the inputs depend on: give %s", tm.Kind, strings.Join(Kinds(), ", "))
	}
	return nil
}

// decode decodes one object of type T.
func decode[T any](b []byte) (*T, error) {
	var v T
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ConfigMapNamed returns the ConfigMap namespace/name, nil when absent.
func (o *Objects) ConfigMapNamed(namespace, name string) *corev1.ConfigMap {
	return o.configMaps[namespace+"/"+name]
}

// ConfigMapsNamed returns every ConfigMap of that name, whatever its namespace.
func (o *Objects) ConfigMapsNamed(name string) []*corev1.ConfigMap {
	var out []*corev1.ConfigMap
	for _, cm := range o.configMaps {
		if cm.Name == name {
			out = append(out, cm)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out
}

// Source returns the Source of a PoolImage in namespace: its Secrets and ConfigMaps are those
// of that namespace.
func (o *Objects) Source(namespace string) Source {
	return objectSource{o: o, ns: namespace}
}

var _ Source = objectSource{}

type objectSource struct {
	o  *Objects
	ns string
}

// Pool implements Source.
func (s objectSource) Pool(name string) (*mcfgv1.MachineConfigPool, error) {
	return s.o.pools[name], nil
}

// Pools implements Source.
func (s objectSource) Pools() ([]*mcfgv1.MachineConfigPool, error) {
	out := make([]*mcfgv1.MachineConfigPool, 0, len(s.o.pools))
	for _, p := range s.o.pools {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ControllerConfig implements Source.
func (s objectSource) ControllerConfig() (*mcfgv1.ControllerConfig, error) {
	return s.o.controllerConfig, nil
}

// Nodes implements Source.
func (s objectSource) Nodes() ([]*corev1.Node, error) { return s.o.nodes, nil }

// MachineConfig implements Source.
func (s objectSource) MachineConfig(name string) (*mcfgv1.MachineConfig, error) {
	return s.o.machineConfigs[name], nil
}

// Secret implements Source.
func (s objectSource) Secret(name string) (*corev1.Secret, error) {
	return s.o.secrets[s.ns+"/"+name], nil
}

// ConfigMap implements Source.
func (s objectSource) ConfigMap(name string) (*corev1.ConfigMap, error) {
	return s.o.configMaps[s.ns+"/"+name], nil
}
