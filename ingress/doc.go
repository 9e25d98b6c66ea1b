// Package ingress is the Emissary side of crossmap's translate stage: it
// renders the Emissary objects (Mappings and Hosts) that the mapper decides
// on, and knows the naming conventions both ends of a cross-cluster route
// must agree on, such as the hostname a remote gateway routes by.
//
// Rendering is pure and deterministic: the same input gives byte-identical
// objects, which is what lets the diff stage skip writes.
package ingress
