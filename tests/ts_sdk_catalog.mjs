// The TypeScript MCP SDK's client reading resources and prompts over WebSocket,
// driven by tests/test_ts_sdk_client.py.
//
// Usage: node --experimental-websocket tests/ts_sdk_catalog.mjs <sdk-dir> <ws-url>
// Lists and reads resources (fixed, binary, templated), subscribes to one and
// has a tool change it, lists and gets prompts, asks for completions, and
// prints one JSON object with what the SDK parsed. Any failure exits non-zero.
import { pathToFileURL } from "node:url";
import path from "node:path";

const [sdkDir, url] = process.argv.slice(2);
const load = (relative) => import(pathToFileURL(path.join(sdkDir, "dist/esm", relative)).href);
const { Client } = await load("client/index.js");
const { WebSocketClientTransport } = await load("client/websocket.js");
const { ResourceUpdatedNotificationSchema } = await load("types.js");

const client = new Client({ name: "ts-sdk-catalog", version: "1.0.0" });
const updated = [];
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
  updated.push(notification.params.uri);
});

await client.connect(new WebSocketClientTransport(new URL(url)));
const report = {
  capabilities: client.getServerCapabilities(),
  resources: (await client.listResources()).resources,
  templates: (await client.listResourceTemplates()).resourceTemplates,
  config: await client.readResource({ uri: "config://app" }),
  logo: await client.readResource({ uri: "blob://logo" }),
  note: await client.readResource({ uri: "note://todo" }),
  prompts: (await client.listPrompts()).prompts,
  review: await client.getPrompt({ name: "review", arguments: { path: "main.py", focus: "style" } }),
  focus: await client.complete({
    ref: { type: "ref/prompt", name: "review" },
    argument: { name: "focus", value: "s" },
  }),
  names: await client.complete({
    ref: { type: "ref/resource", uri: "note://{name}" },
    argument: { name: "name", value: "" },
  }),
};
try {
  await client.readResource({ uri: "note://nothing" });
  report.missing = "read";
} catch (error) {
  report.missing = error.code;
}
await client.subscribeResource({ uri: "config://app" });
await client.callTool({ name: "touch", arguments: { uri: "config://app" } });
await client.unsubscribeResource({ uri: "config://app" });
await client.callTool({ name: "touch", arguments: { uri: "config://app" } });
report.updated = updated;
await client.close();
process.stdout.write(JSON.stringify(report));
