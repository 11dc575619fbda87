//go:build tools

// Package tools pins the main packages this module builds; the build tag keeps it out of every build.
// containerd, runc and the CNI plugins are not listed: build.sh builds each from a copy of its own
// released module (with that module's own go.sum), so that their dependency versions are the upstream ones.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
