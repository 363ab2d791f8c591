"""e2e tier: the real Pulumi engine and a real kube-apiserver (see conftest.py)."""
