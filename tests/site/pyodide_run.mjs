// Run the browser edition's notebooks under Pyodide in Node.js, the way its kernel runs them.
//
//   node tests/site/pyodide_run.mjs JOB.json RESULT.json
//
// JOB.json: {"site": "<the built _build/html/lite>", "notebooks": [{"name": "...",
//            "cells": [{"source": "...", "run": true}, ...]}, ...]}
// RESULT.json gets, per notebook and cell, the outputs the kernel published (nbformat-shaped:
// stream, execute_result, display_data, error), or null for a cell not run.
//
// It does what the kernel's web worker does (jupyterlite/pyodide-kernel 0.8.6,
// packages/pyodide-kernel/src/worker.ts: initRuntime, initPackageManager, initKernel):
// loadPyodide from the site's static/pyodide/ (the runtime and lock file the site ships), load
// micropip, install piplite from the kernel extension's wheel, point piplite at the site's
// all.json indexes with the PyPI fallback as the site configures it, piplite-install the
// kernel's packages, import pyodide_kernel and run each cell through its kernel's run(). The
// site is served over HTTP on 127.0.0.1 (a free port) from this process, and every request
// that would leave this machine (Pyodide's CDN, PyPI) is refused at once: the run is offline.
// One Pyodide serves every notebook; between notebooks the IPython session is reset and
// k8sbook's modules are dropped from sys.modules, so each notebook starts as in a new kernel.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [jobFile, resultFile] = process.argv.slice(2);
const job = JSON.parse(fs.readFileSync(jobFile, "utf8"));
const site = path.resolve(job.site);

const TYPES = { ".json": "application/json", ".whl": "application/zip", ".mjs": "text/javascript",
                ".js": "text/javascript", ".wasm": "application/wasm", ".zip": "application/zip" };
const server = http.createServer((req, res) => {
  const file = path.join(site, decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (!file.startsWith(site) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
const refused = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (resource, options) => {
  const url = String(resource && resource.url ? resource.url : resource);
  if (url.includes("://") && !url.startsWith(origin + "/")) {
    refused.push(url);
    return Promise.reject(new TypeError(`offline: ${url} is not on this machine`));
  }
  return realFetch(resource, options);
};

const config = JSON.parse(fs.readFileSync(path.join(site, "jupyter-lite.json"), "utf8"));
const settings = config["jupyter-config-data"].litePluginSettings[
  "@jupyterlite/pyodide-kernel-extension:kernel"];
const pipliteUrls = settings.pipliteUrls.map((u) => new URL(u, origin + "/").href);
const kernelPypi = path.join(site, "extensions/@jupyterlite/pyodide-kernel-extension/static/pypi");
const pipliteWheel = fs.readdirSync(kernelPypi).find((n) => n.startsWith("piplite-"));
const pipliteWheelUrl = `${origin}/extensions/@jupyterlite/pyodide-kernel-extension/static/pypi/${pipliteWheel}`;
const indexURL = path.join(site, path.dirname(settings.pyodideUrl)) + path.sep;

const started = Date.now();
const { loadPyodide } = await import(pathToFileURL(path.join(indexURL, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL, stdout: () => {}, stderr: () => {} });
await pyodide.loadPackage(["micropip"], { messageCallback: () => {}, errorCallback: () => {} });
await pyodide.runPythonAsync(`
import micropip
await micropip.install(${JSON.stringify(pipliteWheelUrl)}, keep_going=True)
import piplite.piplite
piplite.piplite._PIPLITE_DISABLE_PYPI = ${settings.disablePyPIFallback ? "True" : "False"}
piplite.piplite._PIPLITE_URLS = ${JSON.stringify(pipliteUrls)}
for name in ["ipykernel", "comm", "pyodide-kernel", "jedi", "ipython"]:
    await piplite.install(name, keep_going=True)
import pyodide_kernel
`);
const kernelReady = (Date.now() - started) / 1000;

await pyodide.runPythonAsync(`
import sys
import pyodide_kernel

_kernel = pyodide_kernel.kernel_instance
_shell = _kernel.interpreter
_outputs = []

def _plain(value):
    return value.to_py() if hasattr(value, "to_py") else value

def _stream(name, text):
    _outputs.append({"output_type": "stream", "name": name, "text": text})

def _display(data, metadata, transient=None):
    _outputs.append({"output_type": "display_data", "data": _plain(data),
                     "metadata": _plain(metadata) or {}})

def _result(count, data, metadata):
    _outputs.append({"output_type": "execute_result", "execution_count": count,
                     "data": _plain(data), "metadata": _plain(metadata) or {}})

pyodide_kernel.stdout_stream.publish_stream_callback = _stream
pyodide_kernel.stderr_stream.publish_stream_callback = _stream
_shell.display_pub.display_data_callback = _display
_shell.display_pub.update_display_data_callback = _display
_shell.display_pub.clear_output_callback = lambda wait=False: _outputs.clear()
_shell.displayhook.publish_execution_result = _result

async def _run(code):
    _outputs.clear()
    reply = await _kernel.run(code)
    reply = _plain(reply)
    outputs = list(_outputs)
    if reply.get("status") == "error":
        outputs.append({"output_type": "error", "ename": reply["ename"],
                        "evalue": reply["evalue"]})
    import json
    return json.dumps(outputs)

def _new_session():
    _shell.reset(new_session=True)
    for name in [n for n in sys.modules if n == "k8sbook" or n.startswith("k8sbook.")]:
        del sys.modules[name]
`);
// The kernel's working directory is the notebook's folder of the site's contents, mounted at
// /drive (the worker's initFilesystem, then os.chdir): every chapter sits at its root.
pyodide.FS.mkdirTree("/drive");
for (const name of fs.readdirSync(path.join(site, "files"))) {
  const file = path.join(site, "files", name);
  if (fs.statSync(file).isFile()) pyodide.FS.writeFile(`/drive/${name}`, fs.readFileSync(file));
}
pyodide.runPython('import os; os.chdir("/drive")');
const run = pyodide.globals.get("_run");
const newSession = pyodide.globals.get("_new_session");

const result = { kernel_ready_seconds: kernelReady, pyodide: pyodide.version, notebooks: [] };
for (const notebook of job.notebooks) {
  newSession();
  const t0 = Date.now();
  const cells = [];
  for (const cell of notebook.cells) {
    cells.push(cell.run ? JSON.parse(await run(cell.source)) : null);
  }
  result.notebooks.push({ name: notebook.name, seconds: (Date.now() - t0) / 1000, cells });
}
result.refused = refused;
result.total_seconds = (Date.now() - started) / 1000;
fs.writeFileSync(resultFile, JSON.stringify(result));
server.close();
process.exit(0);
