// Runs a Python script in Pyodide (CPython in WebAssembly, of the Lambda runtime's minor version,
// pinned in package.json) with a layer bundle's `python/` folder mounted where Lambda puts it,
// /opt/python. The build compiles the layer's bytecode with it (layers/bytecode.py); the tests load
// the layer with it.
//   node layers/run_in_pyodide.mjs <bundle>/python <script.py> [arguments...]
// Exits non-zero, printing Python's traceback, when the script raises.
import { readFileSync } from "node:fs";
import path from "node:path";
import { loadPyodide } from "pyodide";

const [site, script, ...args] = process.argv.slice(2);
if (!site || !script) {
  console.error("usage: node layers/run_in_pyodide.mjs <bundle>/python <script.py> [arguments...]");
  process.exit(2);
}
const pyodide = await loadPyodide({ stdout: (line) => console.log(line), stderr: (line) => console.error(line) });
pyodide.FS.mkdirTree("/opt/python");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(site) }, "/opt/python");
pyodide.globals.set("script_argv", pyodide.toPy([path.basename(script), ...args]));
try {
  pyodide.runPython("import sys; sys.argv = list(script_argv); del script_argv");
  pyodide.runPython(readFileSync(script, "utf8"), { filename: path.basename(script) });
} catch (error) {
  console.error(error.message); // Python's traceback; the stack beyond it is Pyodide's own
  process.exit(1);
}
