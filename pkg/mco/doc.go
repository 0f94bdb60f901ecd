// Package mco is what the machine-config operator does with MachineConfigs, pools and nodes,
// read from its code (openshift/machine-config-operator, main of 2026-08): the order it merges
// a pool's MachineConfigs in and which osImageURL wins, which pool manages a node, and which
// pools a MachineConfig reaches. The controller uses it to check, hold and report exactly the
// pools its MachineConfig reaches and to say what a pool will really run; the facts package uses
// it to find a pool's nodes. It is pure: objects in, answers out, no client calls.
package mco
