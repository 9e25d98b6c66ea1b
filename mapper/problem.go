package mapper

import "fmt"

// Reasons of Problems. They are stable: they show up as Event reasons, in the
// status API and as the reason label of the problems metric.
const (
	ReasonConflict         = "Conflict"
	ReasonMissingNamespace = "MissingNamespace"
	ReasonNameTooLong      = "NameTooLong"
	ReasonNoGatewayAddress = "NoGatewayAddress"
	ReasonNoPorts          = "NoPorts"
)

// ObjectRef names an object a Problem is about.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Problem is input crossmap cannot act on. It is reported, never retried
// blindly: the object it names is skipped and everything else goes on.
type Problem struct {
	Reason  string    `json:"reason"`
	Object  ObjectRef `json:"object"`
	Message string    `json:"message"`
}

func (p Problem) Error() string { return fmt.Sprintf("%s: %s", p.Reason, p.Message) }
