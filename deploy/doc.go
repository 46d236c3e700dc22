// Package deploy holds no code: its tests check the deployment files
// statically (Dockerfile, .dockerignore, docker-compose.yml, deploy/compose,
// deploy/tandem.service) against each other and against tandem's own
// configuration loader, since none of them can be run by `go test`.
package deploy
