// Package config reads the controller's settings from the config-ocl-pipelines ConfigMap and
// keeps them current: a Store watches the ConfigMap and each reconcile reads the snapshot taken
// when it started, so a change takes effect on the next reconcile without a restart.
package config
