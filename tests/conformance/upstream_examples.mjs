// Runs each example of the upstream Code Interpreter documentation as a user would copy it,
// through the official client, and prints what each returned as JSON.
// Usage: node --import ./register.mjs upstream_examples.mjs <baseUrl> <token> <workspace>
//
// `sandbox` below has the methods of the SDK's Sandbox object that the examples call, each
// doing what the Sandbox does with the same client (runCode returns `toJSON()`, a session
// forwards to the code interpreter), since a Durable Object cannot run in plain Node.
// `/workspace` in the examples is <workspace>, the server's root.
import { CodeInterpreter, parseSSEStream, SandboxClient } from "@cloudflare/sandbox";

const [baseUrl, token, W] = process.argv.slice(2);
const client = new SandboxClient({
  baseUrl,
  defaultHeaders: { Authorization: `token ${token}` },
  retryTimeoutMs: 0,
});
const interpreter = new CodeInterpreter(client.interpreter);
const codeApi = {
  createCodeContext: (options) => interpreter.createCodeContext(options),
  runCode: async (code, options) => (await interpreter.runCode(code, options)).toJSON(),
  runCodeStream: (code, options) => interpreter.runCodeStream(code, options),
  listCodeContexts: () => interpreter.listCodeContexts(),
  deleteCodeContext: (id) => interpreter.deleteCodeContext(id),
};
const sandbox = {
  ...codeApi,
  readFile: (path, options = {}) => client.files.readFile(path, options.sessionId),
  createSession: async (options = {}) => {
    const id = options.id ?? `session-${Date.now()}`;
    await client.utils.createSession({ id, env: options.env, cwd: options.cwd });
    return { id, ...codeApi };
  },
};
const formats = (execution) =>
  execution.results.map((r) => Object.keys(r).filter((k) => r[k] !== undefined).sort());
const report = {};

// Quick start
{
  const execution = await sandbox.runCode(`
import numpy as np
import matplotlib.pyplot as plt

x = np.linspace(0, 10, 100)
y = np.sin(x)

plt.plot(x, y)
plt.title('Sine Wave')
plt.savefig('output.png')

print(f'Generated {len(x)} points')
`, {
    language: 'python'
  });
  report.quickStart = { stdout: execution.logs.stdout, error: execution.error ?? null,
    formats: formats(execution), chart: execution.results.find((r) => r.chart)?.chart ?? null };
}

// Execution contexts, and their lifecycle
{
  const context = await sandbox.createCodeContext({
    language: 'python',
    cwd: `${W}/notebooks`
  });
  const exec1 = await sandbox.runCode('x = 42', { context, language: 'python' });
  const exec2 = await sandbox.runCode('print(x)', { context, language: 'python' });
  const cwd = await sandbox.runCode('import os; print(os.getcwd())', { context });
  const contexts = await sandbox.listCodeContexts();
  const listed = contexts.map((ctx) => `Context ${ctx.id}: ${ctx.language}`);
  await sandbox.deleteCodeContext(context.id);
  const after = (await sandbox.listCodeContexts()).map((ctx) => ctx.id);
  report.contexts = { exec1: exec1.logs.stdout, exec2: exec2.logs.stdout, cwd: cwd.logs.stdout,
    listed, id: context.id, deletedIsGone: !after.includes(context.id) };
}

// Python with pandas, numpy and scikit-learn
{
  const execution = await sandbox.runCode(`
import pandas as pd
import numpy as np
from sklearn.linear_model import LinearRegression

# Your data science code here
df = pd.DataFrame({'x': [1, 2, 3], 'y': [2, 4, 6]})
print(df.describe())
`, {
    language: 'python'
  });
  report.dataScience = { stdout: execution.logs.stdout.join(''), error: execution.error ?? null };
}

// JavaScript and TypeScript
{
  const js = await sandbox.runCode(`
const data = [1, 2, 3, 4, 5];
const sum = data.reduce((a, b) => a + b, 0);
console.log('Sum:', sum);
`, {
    language: 'javascript'
  });
  const ts = await sandbox.runCode(`
interface Point {
  x: number;
  y: number;
}

const p: Point = { x: 10, y: 20 };
console.log('Point:', p);
`, {
    language: 'typescript'
  });
  report.javascript = { stdout: js.logs.stdout, error: js.error ?? null };
  report.typescript = { stdout: ts.logs.stdout, error: ts.error ?? null };
}

// Multiple results
{
  const execution = await sandbox.runCode(`
import matplotlib.pyplot as plt
import json

# Generate a chart
plt.plot([1, 2, 3], [1, 4, 9])
plt.savefig('chart.png')

# Output JSON
data = {'status': 'success', 'points': 3}
print(json.dumps(data))

# Regular output
print('Computation complete')
`, {
    language: 'python'
  });
  report.multipleResults = { output: execution.logs.stdout.join(''), formats: formats(execution),
    chart: execution.results.find((r) => r.chart)?.chart ?? null };
}

// Streaming execution
{
  const stream = await sandbox.runCodeStream(`
import time

for i in range(10):
    print(f'Step {i}')
    time.sleep(1)
`, {
    language: 'python'
  });
  const events = [];
  for await (const event of parseSSEStream(stream)) {
    events.push({ type: event.type, text: event.text, timestamp: event.timestamp, at: Date.now() });
  }
  report.streaming = events;
}

// Stream callbacks
{
  const seen = [];
  const code = "import sys, matplotlib.pyplot as plt\nprint('out')\nprint('err', file=sys.stderr)\n"
    + "plt.bar(['a', 'b'], [1, 2]); plt.show()";
  const execution = await sandbox.runCode(code, {
    language: 'python',
    onStdout: (output) => { seen.push(['stdout', output.text]); },
    onStderr: (output) => { seen.push(['stderr', output.text]); },
    onResult: (result) => { seen.push(['result', Object.keys(result).sort(), result.chart?.type]); },
    onError: (error) => { seen.push(['error', error.name]); },
  });
  const failing = await sandbox.runCode('raise ValueError("bad")', {
    language: 'python',
    onError: (error) => { seen.push(['error', error.name, error.message]); },
  });
  report.callbacks = { seen, error: execution.error ?? null, failingError: failing.error?.name };
}

// Error handling
{
  const execution = await sandbox.runCode(`
import non_existent_module
`, {
    language: 'python'
  });
  report.errorHandling = execution.error;
}

// Data analysis workflow
{
  const context = await sandbox.createCodeContext({
    language: 'python',
    cwd: `${W}/data`
  });
  const load = await sandbox.runCode(`
import pandas as pd
df = pd.read_csv('input.csv')
print(f'Loaded {len(df)} rows')
`, { context });
  const process = await sandbox.runCode(`
df['normalized'] = (df['value'] - df['value'].mean()) / df['value'].std()
df.to_csv('output.csv', index=False)
`, { context });
  const visualize = await sandbox.runCode(`
import matplotlib.pyplot as plt
plt.hist(df['normalized'], bins=30)
plt.savefig('distribution.png')
`, { context });
  const result = await sandbox.readFile(`${W}/data/output.csv`);
  report.dataAnalysis = { load: load.logs.stdout, processError: process.error ?? null,
    chart: visualize.results.find((r) => r.chart)?.chart ?? null, csv: result.content };
}

// Interactive notebook
{
  const notebook = await sandbox.createCodeContext({
    language: 'python'
  });
  const cells = [
    'import numpy as np',
    'x = np.array([1, 2, 3, 4, 5])',
    'mean = x.mean()',
    'print(f"Mean: {mean}")'
  ];
  const outputs = [];
  for (const cell of cells) {
    const exec = await sandbox.runCode(cell, { context: notebook });
    outputs.push(exec.logs.stdout);
  }
  report.notebook = outputs;
}

// Safe code evaluation
{
  const userCode = "print(sum(range(10)))";
  const execution = await sandbox.runCode(userCode, {
    language: 'python',
    timeout: 30000  // 30 second limit
  });
  report.safe = { success: !execution.error, output: execution.logs.stdout };
}

// Code contexts in an execution session
{
  const session = await sandbox.createSession({
    cwd: `${W}/ml`
  });
  const context = await session.createCodeContext({
    language: 'python'
  });
  const run = await session.runCode('import numpy as np', { context });
  const check = await session.runCode('print(np.arange(3).sum())', { context });
  report.session = { error: run.error ?? null, stdout: check.logs.stdout };
}

// Several contexts in parallel
{
  const contexts = await Promise.all([1, 2, 3].map(() => sandbox.createCodeContext({ language: 'python' })));
  const runs = await Promise.all(contexts.map((context, i) => sandbox.runCode(
    `import time\nstart = time.time()\ntime.sleep(1)\nprint(${i}, start, time.time())`, { context })));
  report.parallel = runs.map((r) => r.logs.stdout.join('').trim().split(' ').map(Number));
}

console.log(JSON.stringify(report));
