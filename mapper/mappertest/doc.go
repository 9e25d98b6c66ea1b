// Package mappertest holds fixture builders for tests of the translate stage
// (watch → snapshot → translate → diff → apply → status): small constructors
// of the typed Kubernetes objects that go into a mapper snapshot, in the
// style of Contour's internal/fixture.
//
// Every builder returns a new object with its apiVersion and kind set, as the
// controller hands them to the mapper, so tests can pass them straight to
// Import, Export or Diff.
package mappertest
