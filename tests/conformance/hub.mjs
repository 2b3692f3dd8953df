// The official client against a sandbox on a JupyterHub: the base URL is the sandbox's server
// with the API prefix (`<hub>/user/<user>/<id>/sandbox`), the token a Hub token.
// Usage: node --import ./register.mjs hub.mjs <baseUrl> <token>
import { CodeInterpreter, SandboxClient } from "@cloudflare/sandbox";

const [baseUrl, token] = process.argv.slice(2);
const client = new SandboxClient({
  baseUrl,
  defaultHeaders: { Authorization: `token ${token}` },
  retryTimeoutMs: 0,
});
const interpreter = new CodeInterpreter(client.interpreter);
const report = {};
report.ping = await client.utils.ping();
const context = await interpreter.createCodeContext({ language: "python" });
const streamed = [];
report.run = (await interpreter.runCode("print('from the hub')\n6 * 7", {
  context,
  onStdout: (o) => streamed.push(o.text),
})).toJSON();
report.streamed = streamed;
await client.files.writeFile("hub.txt", "written by node", "default");
report.read = (await client.files.readFile("hub.txt", "default")).content;
await interpreter.deleteCodeContext(context.id);
console.log(JSON.stringify(report));
