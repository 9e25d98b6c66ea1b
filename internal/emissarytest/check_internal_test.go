package emissarytest

import (
	"context"
	"strings"
	"testing"
)

// A module the interpreter lacks makes CheckPython fail with the command
// that installs its package: the conformance test then fails with it
// rather than skip.
func TestCheckPythonNamesTheInstallCommand(t *testing.T) {
	saved := pythonModules
	t.Cleanup(func() { pythonModules = saved })
	pythonModules = append(saved[:len(saved):len(saved)], [2]string{"emissarytest_no_such_module", "python3-emissarytest-no-such"})

	err := CheckPython(context.Background())
	if err == nil {
		t.Fatal("CheckPython succeeded with a module that does not exist")
	}
	if want := "apt-get install -y python3-emissarytest-no-such"; !strings.Contains(err.Error(), want) {
		t.Errorf("CheckPython: %v\nwant it to say %q", err, want)
	}
	t.Log(err)
	if strings.Contains(err.Error(), "python3-yaml") {
		t.Errorf("CheckPython: %v\nwant only the missing package", err)
	}
}
