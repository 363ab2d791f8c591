"""Every kind of object arc-zfs-cache declares, through the Kubernetes provider plugin.

Driven by tests/e2e/test_k8s_provider.py. Stack config:

- ``kubeconfig`` (path), ``namespace``: where everything goes;
- ``chart``: path of the local gha-runner-scale-set chart;
- ``stage``: ``minimal`` (provider + ConfigMap only) or ``full`` (default);
- ``variant``: 1 (default) or 2, a change of every object that updates in place;
- ``settings``: the ConfigMap's data value (a change replaces it, as upstream);
- ``token``: the Secret's token (a secret).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.runner_scale_set import scale_set_values

cfg = pulumi.Config()
ns_name = cfg.require("namespace")
stage = cfg.get("stage") or "full"
variant = cfg.get_int("variant") or 1
labels = {"app.kubernetes.io/part-of": "k8s-provider-e2e", "variant": str(variant)}

provider = k8s.Provider(
    "cluster",
    kubeconfig=cfg.require("kubeconfig"),
    context=cfg.get("context"),
    enable_server_side_apply=True,
)
opts = pulumi.ResourceOptions(provider=provider)

ns = k8s.core.v1.Namespace(
    "ns", metadata=k8s.meta.v1.ObjectMetaArgs(name=ns_name, labels=labels), opts=opts
)
in_ns = pulumi.ResourceOptions(provider=provider, depends_on=[ns])
cm = k8s.core.v1.ConfigMap(
    "settings",
    metadata=k8s.meta.v1.ObjectMetaArgs(name="settings", namespace=ns_name, labels=labels),
    data={"content": cfg.get("settings") or "one"},
    opts=in_ns,
)
pulumi.export("configmap_uid", cm.metadata.uid)

if stage == "full":
    secret = k8s.core.v1.Secret(
        "credentials",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="credentials", namespace=ns_name, labels=labels),
        string_data={"token": cfg.require_secret("token")},
        opts=in_ns,
    )
    sa = k8s.core.v1.ServiceAccount(
        "sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="runner", namespace=ns_name, labels=labels),
        opts=in_ns,
    )
    role = k8s.rbac.v1.Role(
        "role",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="reader", namespace=ns_name, labels=labels),
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["configmaps"], verbs=["get"])
        ],
        opts=in_ns,
    )
    k8s.rbac.v1.RoleBinding(
        "binding",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="reader", namespace=ns_name, labels=labels),
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=sa.metadata.name, namespace=ns_name)
        ],
        opts=in_ns,
    )
    sc = k8s.storage.v1.StorageClass(
        "sc",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{ns_name}-zfs", labels=labels),
        provisioner="zfs.csi.openebs.io",
        parameters={"poolname": "tank", "fstype": "zfs"},
        volume_binding_mode="WaitForFirstConsumer",
        allow_volume_expansion=True,
        opts=opts,
    )
    k8s.core.v1.PersistentVolumeClaim(
        "claim",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="claim", namespace=ns_name, labels=labels),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=sc.metadata.name,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": "1Gi"}),
        ),
        opts=in_ns,
    )
    k8s.apps.v1.Deployment(
        "web",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name="web",
            namespace=ns_name,
            labels=labels,
            # No kubelet here: a Deployment never becomes ready.
            annotations={"pulumi.com/skipAwait": "true"},
        ),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=variant,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": "web"}),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels={"app": "web"}),
                spec=k8s.core.v1.PodSpecArgs(
                    containers=[
                        k8s.core.v1.ContainerArgs(name="web", image="registry.k8s.io/pause:3.10")
                    ]
                ),
            ),
        ),
        opts=in_ns,
    )
    # A custom resource of a kind with top-level fields (not only spec).
    pulumi.CustomResource(
        "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass",
        "snapclass",
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": f"{ns_name}-snap", "labels": labels},
            "driver": "zfs.csi.openebs.io",
            "deletionPolicy": "Delete",
        },
        opts,
    )
    chart = k8s.helm.v4.Chart(
        "runners",
        k8s.helm.v4.ChartArgs(
            chart=cfg.require("chart"),
            name="runners",
            namespace=ns_name,
            values=scale_set_values(
                name="runners",
                namespace=ns_name,
                github_config_url="https://github.com/example/repo",
                runner_group="default",
                min_runners=0,
                max_runners=variant,
                runner_image="ghcr.io/actions/actions-runner:2.328.0",
                node="node-a",
                controller_namespace="arc-systems",
                controller_service_account="arc-controller",
                work_volume_size="1Gi",
                work_volume_storage_class=f"{ns_name}-zfs",
            ),
        ),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[ns, secret, sc]),
    )
    pulumi.export("chart_resources", chart.resources.apply(lambda rs: len(rs or [])))
