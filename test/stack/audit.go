package stack

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// ControllerUser is the controller's ServiceAccount as the audit log names it.
const ControllerUser = "system:serviceaccount:" + SystemNamespace + ":ocl-pipelines-controller"

// AuditEvent is one event of the API server's audit log (hack/stack/audit-policy.yaml): the
// fields the tests and benchmarks read.
type AuditEvent struct {
	// Stage is the audit stage (ResponseComplete, ...).
	Stage string `json:"stage"`
	// User is who made the request.
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	// Verb is the request's verb (get, list, create, update, patch, delete, watch).
	Verb string `json:"verb"`
	// RequestURI is the request's path and query.
	RequestURI string `json:"requestURI"`
	// ObjectRef is the object the request is about; nil for non-resource requests.
	ObjectRef *struct {
		APIGroup    string `json:"apiGroup"`
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	// ResponseStatus is the answer's status; its Code 403 is a refusal.
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	// Received is when the API server received the request.
	Received time.Time `json:"requestReceivedTimestamp"`
}

// AuditOffset is the audit log's current size: Audit from it sees only later events.
func (s *Stack) AuditOffset() (int64, error) {
	p, err := s.Path("audit.log")
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Audit calls f with every event of the local API server's audit log from offset on, and
// returns how many lines it could not read as an event (the API server may be writing the last
// one).
func (s *Stack) Audit(offset int64, f func(AuditEvent)) (skipped int, err error) {
	p, err := s.Path("audit.log")
	if err != nil {
		return 0, err
	}
	file, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("the API server's audit log: %w", err)
	}
	defer func() { _ = file.Close() }() // read only: nothing is lost
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e AuditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			skipped++
			continue
		}
		f(e)
	}
	return skipped, sc.Err()
}
