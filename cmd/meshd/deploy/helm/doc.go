// Package helm holds the Helm chart of gossipmesh (gossipmesh/, a
// StatefulSet of meshd peers behind a headless Service) and the test that
// renders it with helm and checks the objects and meshd's flags in them.
// The package has no code: go test runs the check when HELM names a helm
// binary (.ci/run builds one from helm's Go module).
//
// Install the chart (the image built from simulations/cluster/Dockerfile,
// pushed where the cluster pulls):
//
//	helm install mesh ./cmd/meshd/deploy/helm/gossipmesh \
//	  --set swarmKey="$(meshctl keygen swarm)" --set apiToken="$(openssl rand -hex 16)"
package helm
