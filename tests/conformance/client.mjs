// Drives a server through the official client and prints what each call returned as JSON.
// Usage: node --import ./register.mjs client.mjs <baseUrl> <token>
import { CodeInterpreter, collectFile, parseSSEStream, SandboxClient } from "@cloudflare/sandbox";

const [baseUrl, token, root, portText] = process.argv.slice(2);
const port = Number(portText);
const client = new SandboxClient({
  baseUrl,
  defaultHeaders: { Authorization: `token ${token}` },
  retryTimeoutMs: 0,
});
const interpreter = new CodeInterpreter(client.interpreter);

async function failure(call) {
  try {
    await call();
    return null;
  } catch (e) {
    return { name: e.constructor.name, code: e.code, message: e.message, httpStatus: e.httpStatus };
  }
}

const report = {};
report.ping = await client.utils.ping();
report.version = await client.utils.getVersion();

const python = await interpreter.createCodeContext({ language: "python", envVars: { CONF: "yes" } });
report.python = python;
report.withContext = (await interpreter.runCode(
  "import os\nprint(os.environ['CONF'])\nx = 41\nx + 1", { context: python },
)).toJSON();
report.withoutContext = (await interpreter.runCode("x * 2")).toJSON();
report.rich = (await interpreter.runCode(
  "from IPython.display import HTML, display\ndisplay(HTML('<i>hi</i>'))\n{'k': [1, 2]}",
  { context: python },
)).toJSON();
report.error = (await interpreter.runCode("1 / 0", { context: python })).toJSON();
const streamed = [];
report.callbacks = (await interpreter.runCode("import sys\nprint('o')\nprint('e', file=sys.stderr)", {
  context: python,
  onStdout: (o) => streamed.push(["stdout", o.text, typeof o.timestamp]),
  onStderr: (o) => streamed.push(["stderr", o.text, typeof o.timestamp]),
})).toJSON();
report.streamed = streamed;
const body = await interpreter.runCodeStream("print('streamed')", { context: python });
report.streamBody = await new Response(body).text();

const javascript = await interpreter.createCodeContext({ language: "javascript" });
report.javascript = (await interpreter.runCode(
  "console.log('js'); const o = { a: 1, b: [2] }; o", { context: javascript },
)).toJSON();
report.jsError = (await interpreter.runCode("null.boom", { context: javascript })).toJSON();
const typescript = await interpreter.createCodeContext({ language: "typescript" });
report.typescript = (await interpreter.runCode(
  "const n: number = 21;\nn * 2", { context: typescript },
)).toJSON();

report.listed = (await interpreter.listCodeContexts()).map((c) => ({ id: c.id, language: c.language }));
report.missingDelete = await failure(() => interpreter.deleteCodeContext("no-such-context"));
report.missingRun = await failure(() => client.interpreter.runCodeStream("no-such-context", "1", undefined, {}));
report.badLanguage = await failure(() => client.interpreter.createCodeContext({ language: "cobol" }));
await interpreter.deleteCodeContext(javascript.id);
await interpreter.deleteCodeContext(typescript.id);
report.afterDelete = (await interpreter.listCodeContexts()).map((c) => c.id);
await interpreter.deleteCodeContext(python.id);

async function collect(stream) {
  const events = [];
  for await (const event of parseSSEStream(stream)) events.push(event);
  return events;
}

const sid = "conformance";
report.session = await client.utils.createSession({ id: sid, env: { FOO: "bar" }, cwd: "/workspace" });
report.duplicateSession = await failure(() => client.utils.createSession({ id: sid }));
report.exec = await client.commands.execute("echo $FOO; mkdir -p work; cd work; pwd", sid);
// What ExecutionSession.setEnvVars sends: export for values, unset for null.
await client.commands.execute("export KEY='a b'", sid, { origin: "internal" });
await client.commands.execute("unset FOO", sid, { origin: "internal" });
report.afterEnv = await client.commands.execute("echo [$FOO] $KEY; pwd", sid);
report.scoped = await client.commands.execute("echo $ONLY; pwd", sid, { env: { ONLY: "once" }, cwd: "/tmp" });
report.execStream = await collect(await client.commands.executeStream("echo s1; echo s2 >&2", sid));
report.terminated = await failure(() => client.commands.execute("exit 7", sid));
report.freshShell = await client.commands.execute("echo [$KEY]", sid);

const started = await client.processes.startProcess("echo from-process; sleep 0.2", sid);
report.started = started;
let info;
for (let i = 0; i < 100; i++) {
  info = await client.processes.getProcess(started.processId);
  if (info.process.status !== "running") break;
  await new Promise((r) => setTimeout(r, 50));
}
report.processInfo = info.process;
report.processLogs = await client.processes.getProcessLogs(started.processId);
report.processStream = await collect(await client.processes.streamProcessLogs(started.processId));
const sleeper = await client.processes.startProcess("sleep 300", sid);
report.processList = (await client.processes.listProcesses()).processes.map((p) => [p.id, p.status]);
report.killed = await client.processes.killProcess(sleeper.processId);
report.afterKill = (await client.processes.getProcess(sleeper.processId)).process.status;
report.missingProcess = await failure(() => client.processes.getProcess("nope"));
const files = client.files;
await files.mkdir("data/in", sid, { recursive: true });
await files.writeFile("data/in/note.txt", "héllo ✓", sid);
report.readText = await files.readFile("data/in/note.txt", sid);
await files.writeFile("data/bytes.bin", "AAEC/w==", sid, { encoding: "base64" });
report.readBinary = await files.readFile("data/bytes.bin", sid);
const collected = await collectFile(await files.readFileStream("data/bytes.bin", sid));
report.fileStream = { bytes: Array.from(collected.content), metadata: collected.metadata };
report.listing = (await files.listFiles("data", sid, { recursive: true })).files.map((f) => [f.relativePath, f.type]);
report.existsBefore = (await files.exists("data/in/note.txt", sid)).exists;
await files.renameFile("data/in/note.txt", "data/in/renamed.txt", sid);
await files.moveFile("data/in", "data/out", sid);
report.afterMove = (await files.listFiles("data/out", sid)).files.map((f) => f.name);
await files.deleteFile("data/out/renamed.txt", sid);
report.existsAfter = (await files.exists("data/out/renamed.txt", sid)).exists;
report.readMissing = await failure(() => files.readFile("data/none.txt", sid));
report.readOutside = await failure(() => files.readFile("/etc/passwd", sid));
report.deleted = await client.utils.deleteSession(sid);

// Watching, ports, git, commands and backups (the test made `origin`, a git repository).
report.commands = await client.utils.getCommands();
await files.mkdir("watched", undefined, { recursive: true });
const watchStream = await client.watch.watch({ path: "watched", recursive: true });
const watchEvents = parseSSEStream(watchStream)[Symbol.asyncIterator]();
report.watching = (await watchEvents.next()).value;
await files.writeFile("watched/new.txt", "hello", undefined);
report.watchEvent = (await watchEvents.next()).value;
await watchEvents.return();
const firstCheck = await client.watch.checkChanges({ path: "watched" });
report.check = [firstCheck.status, (await client.watch.checkChanges({ path: "watched", since: firstCheck.version })).status];
const server = await client.processes.startProcess(`python3 -m http.server ${port} --bind 127.0.0.1`, undefined);
report.port = await collect(await client.ports.watchPort({ port, mode: "http", processId: server.processId, interval: 100 }));
await client.processes.killProcess(server.processId);
report.git = await client.git.checkout(`file://${root}/origin`, undefined, { targetDir: "cloned", branch: "main" });
report.backup = await client.backup.createArchive("cloned", "cloned.tar.zst", undefined, { compression: { format: "zstd" } });
report.restored = await client.backup.restoreArchive("restored", "cloned.tar.zst", undefined);
report.uploadRefused = await failure(() => client.backup.uploadParts({ archivePath: "cloned.tar.zst", parts: [{ partNumber: 1, url: "http://169.254.169.254/latest", offset: 0, size: 1 }] }));

console.log(JSON.stringify(report));
