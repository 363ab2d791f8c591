package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// kubeProvider implements the plugin protocol. One process serves one
// provider resource (the engine starts a plugin per provider instance).
type kubeProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	host    *provider.HostClient
	version string

	mu      sync.RWMutex
	config  clusterConfig
	clients *kubeClients
	// unknownConfig is set when the provider's inputs are not known yet
	// (preview of a stack whose kubeconfig is computed): then every
	// operation answers from its inputs, as the upstream provider does.
	unknownConfig bool
	configured    bool

	// cancel stops long waits when the engine cancels the deployment.
	cancelCtx context.Context
	cancel    context.CancelFunc
}

func newKubeProvider(host *provider.HostClient, version string) *kubeProvider {
	ctx, cancel := context.WithCancel(context.Background())
	return &kubeProvider{host: host, version: version, cancelCtx: ctx, cancel: cancel}
}

func (p *kubeProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.version}, nil
}

// GetSchema returns a minimal package schema: the SDKs this program uses are
// generated already, and the engine only needs the name and version.
func (p *kubeProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	schema, err := json.Marshal(map[string]any{
		"name":        "kubernetes",
		"version":     p.version,
		"description": "test double of pulumi-resource-kubernetes (arc-zfs-cache tools/k8s-provider)",
	})
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetSchemaResponse{Schema: string(schema)}, nil
}

func (p *kubeProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.cancel()
	return &emptypb.Empty{}, nil
}

// CheckConfig passes the provider's inputs through: unknown keys are ignored
// (the real provider has many options this double does not need).
func (p *kubeProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// configKeys whose change may point the provider at another cluster.
var clusterKeys = []string{"kubeconfig", "context", "cluster", "clusterIdentifier"}

// DiffConfig reports changed provider inputs as an update. Like upstream, it
// replaces the provider (and so every resource it manages) only when the
// target cluster changes: `clusterIdentifier` if set, otherwise the API
// server URL the kubeconfig/context resolves to.
func (p *kubeProvider) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(oldInputsOf(req.GetOldInputs(), req.GetOlds()), "DiffConfig olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "DiffConfig news")
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, k := range unionKeys(olds, news) {
		if k == "version" {
			continue
		}
		if !unsecret(olds[resource.PropertyKey(k)]).DeepEquals(unsecret(news[resource.PropertyKey(k)])) {
			diffs = append(diffs, k)
		}
	}
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	if len(diffs) == 0 {
		return resp, nil
	}
	resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	resp.Diffs = diffs
	oldCfg, oldOK := configFromProps(olds)
	newCfg, newOK := configFromProps(news)
	if !oldOK || !newOK {
		return resp, nil // unknown config: cannot tell, and must not guess a replacement
	}
	oldID := propString(olds, "clusterIdentifier")
	newID := propString(news, "clusterIdentifier")
	switch {
	case oldID != "" || newID != "":
		if oldID != newID {
			resp.Replaces = []string{"clusterIdentifier"}
		}
	default:
		if changedAny(diffs, clusterKeys) {
			oldServer, err1 := serverURL(oldCfg)
			newServer, err2 := serverURL(newCfg)
			if err1 == nil && err2 == nil && oldServer != newServer {
				resp.Replaces = intersect(diffs, clusterKeys)
			}
		}
	}
	return resp, nil
}

// Configure builds the Kubernetes clients. It makes no request: preview of a
// stack must not need more than GETs, and a cluster that is unreachable
// should fail the operation that needs it, naming that resource.
func (p *kubeProvider) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	var props resource.PropertyMap
	if req.GetArgs() != nil {
		m, err := unmarshal(req.GetArgs(), "Configure")
		if err != nil {
			return nil, err
		}
		props = m
	} else {
		// Older engines only send flattened "kubernetes:config:<key>" strings.
		props = resource.PropertyMap{}
		for k, v := range req.GetVariables() {
			const prefix = "kubernetes:config:"
			if len(k) > len(prefix) && k[:len(prefix)] == prefix {
				props[resource.PropertyKey(k[len(prefix):])] = resource.NewProperty(v)
			}
		}
	}
	cfg, known := configFromProps(props)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.config = cfg
	p.configured = true
	p.unknownConfig = !known
	if known {
		clients, err := newKubeClients(cfg)
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "configuring the kubernetes provider: %v", err)
		}
		p.clients = clients
	}
	return &pulumirpc.ConfigureResponse{
		AcceptSecrets:   true,
		AcceptResources: true,
		SupportsPreview: true,
	}, nil
}

// kube returns the clients, or an error naming what is missing.
func (p *kubeProvider) kube() (*kubeClients, clusterConfig, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.clients == nil {
		if p.unknownConfig {
			return nil, p.config, errConfigUnknown
		}
		return nil, p.config, fmt.Errorf("the kubernetes provider is not configured")
	}
	return p.clients, p.config, nil
}

var errConfigUnknown = fmt.Errorf("the kubernetes provider's configuration is not known yet")

// configFromProps reads the provider inputs; ok is false when one that
// selects the cluster is unknown.
func configFromProps(props resource.PropertyMap) (clusterConfig, bool) {
	for _, k := range []string{"kubeconfig", "context", "cluster", "namespace"} {
		if v, has := props[resource.PropertyKey(k)]; has && unsecret(v).ContainsUnknowns() {
			return clusterConfig{}, false
		}
	}
	return clusterConfig{
		kubeconfig:       propString(props, "kubeconfig"),
		context:          propString(props, "context"),
		cluster:          propString(props, "cluster"),
		namespace:        propString(props, "namespace"),
		configMapMutable: propBool(props, "enableConfigMapMutable"),
		secretMutable:    propBool(props, "enableSecretMutable"),
	}, true
}

// propString reads a (possibly secret) string input.
func propString(props resource.PropertyMap, key string) string {
	v := unsecret(props[resource.PropertyKey(key)])
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

// propBool reads a boolean input. The SDKs send the provider's boolean
// options JSON-encoded ("true"), so strings are accepted too.
func propBool(props resource.PropertyMap, key string) bool {
	v := unsecret(props[resource.PropertyKey(key)])
	switch {
	case v.IsBool():
		return v.BoolValue()
	case v.IsString():
		b, err := strconv.ParseBool(v.StringValue())
		return err == nil && b
	}
	return false
}

func unionKeys(a, b resource.PropertyMap) []string {
	set := map[string]struct{}{}
	for k := range a {
		set[string(k)] = struct{}{}
	}
	for k := range b {
		set[string(k)] = struct{}{}
	}
	return sortedKeys(set)
}

func changedAny(diffs, keys []string) bool { return len(intersect(diffs, keys)) > 0 }

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
			}
		}
	}
	return out
}

// serverURL resolves the API server a config points at.
func serverURL(cfg clusterConfig) (string, error) {
	c, err := newKubeClients(cfg)
	if err != nil {
		return "", err
	}
	return c.rest.Host, nil
}
