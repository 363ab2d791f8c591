package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// clusterConfig is what the provider resource configures (the subset of the
// upstream provider's inputs that this double honours).
type clusterConfig struct {
	kubeconfig       string // a path or the kubeconfig itself; "" = $KUBECONFIG / ~/.kube/config
	context          string
	cluster          string
	namespace        string // default namespace override
	configMapMutable bool   // enableConfigMapMutable
	secretMutable    bool   // enableSecretMutable
}

// kubeClients bundles what every operation needs. It is built once per
// Configure; the discovery cache is reset when a kind is not found, because
// CRDs created earlier in the same deployment are not in the first snapshot.
type kubeClients struct {
	rest             *rest.Config
	dynamic          dynamic.Interface
	discovery        discovery.CachedDiscoveryInterface
	mapper           *restmapper.DeferredDiscoveryRESTMapper
	defaultNamespace string
	mu               sync.Mutex // serialises mapper resets
}

// looksLikeKubeconfigContent tells a kubeconfig document from a path, as the
// upstream provider does: it accepts either in the same `kubeconfig` input.
func looksLikeKubeconfigContent(s string) bool {
	t := strings.TrimSpace(s)
	return strings.Contains(t, "\n") || strings.HasPrefix(t, "{") || strings.Contains(t, "apiVersion:")
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// newKubeClients loads the kubeconfig and builds the clients. It contacts the
// API server lazily: nothing here makes a request.
func newKubeClients(cfg clusterConfig) (*kubeClients, error) {
	var loader clientcmd.ClientConfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.context}
	if cfg.cluster != "" {
		overrides.Context.Cluster = cfg.cluster
	}
	switch {
	case cfg.kubeconfig != "" && looksLikeKubeconfigContent(cfg.kubeconfig):
		raw, err := clientcmd.Load([]byte(cfg.kubeconfig))
		if err != nil {
			return nil, fmt.Errorf("parsing the kubeconfig given as content: %w", err)
		}
		loader = clientcmd.NewDefaultClientConfig(*raw, overrides)
	case cfg.kubeconfig != "":
		path := expandHome(cfg.kubeconfig)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("kubeconfig %q: %w", path, err)
		}
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		loader = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	default:
		// $KUBECONFIG (a list of files) or ~/.kube/config, like kubectl.
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		loader = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	}
	restCfg, err := loader.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no kubeconfig: set the provider's `kubeconfig`, $KUBECONFIG or ~/.kube/config")
		}
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	// client-go's defaults (5 QPS) throttle a chart's worth of objects.
	restCfg.QPS, restCfg.Burst = 50, 100
	restCfg.UserAgent = "pulumi-kubernetes-test-double/" + version

	ns := cfg.namespace
	if ns == "" {
		ns, _, err = loader.Namespace()
		if err != nil || ns == "" {
			ns = "default"
		}
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building the dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building the discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	return &kubeClients{
		rest:             restCfg,
		dynamic:          dyn,
		discovery:        cached,
		mapper:           restmapper.NewDeferredDiscoveryRESTMapper(cached),
		defaultNamespace: ns,
	}, nil
}

// mapping resolves a kind to its resource (plural) and scope. A kind that is
// not (yet) served resets the discovery cache once before giving up.
func (k *kubeClients) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil {
		return m, nil
	}
	if !meta.IsNoMatchError(err) {
		return nil, err
	}
	k.mu.Lock()
	k.mapper.Reset()
	k.mu.Unlock()
	return k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// mappingWait retries mapping until the kind is served or the timeout passes:
// a custom resource declared right after its CRD (same `pulumi up`) becomes
// discoverable only once the CRD is established.
func (k *kubeClients) mappingWait(ctx context.Context, gvk schema.GroupVersionKind, timeout time.Duration) (*meta.RESTMapping, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := k.mapping(gvk)
		if err == nil {
			return m, nil
		}
		if !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// resourceClient returns the dynamic client for an object of the mapping.
func (k *kubeClients) resourceClient(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return k.dynamic.Resource(m.Resource).Namespace(namespace)
	}
	return k.dynamic.Resource(m.Resource)
}

// isNamespaced reports the scope of a mapping.
func isNamespaced(m *meta.RESTMapping) bool {
	return m.Scope.Name() == meta.RESTScopeNameNamespace
}
