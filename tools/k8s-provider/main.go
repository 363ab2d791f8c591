// Command pulumi-resource-kubernetes is a test double of the Pulumi Kubernetes
// provider plugin: it implements, over the real plugin gRPC protocol, the
// subset of the upstream provider that arc-zfs-cache uses (see README.md).
// The upstream plugin cannot be built here (its Go modules are not served by
// the module proxy this project is restricted to), and the e2e tier needs the
// real Pulumi engine to talk to a real kube-apiserver through *some* plugin.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is the pulumi-kubernetes version this double stands in for; the
// build stamps the pin from pyproject.toml with -ldflags -X main.version=….
var version = "4.23.0"

func main() {
	err := provider.Main("kubernetes", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newKubeProvider(host, version), nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-kubernetes: %v\n", err)
		os.Exit(1)
	}
}
