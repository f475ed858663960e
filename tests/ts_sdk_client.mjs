// The TypeScript MCP SDK's client over WebSocket, driven by tests/test_ts_sdk_client.py.
//
// Usage: node --experimental-websocket tests/ts_sdk_client.mjs <sdk-dir> <ws-url>
// Connects (initialize handshake), lists the tools, calls the content tools,
// raises the log level, calls the logging tool, and prints one JSON object with
// what the SDK parsed. Any failure exits non-zero with the error on stderr.
import { pathToFileURL } from "node:url";
import path from "node:path";

const [sdkDir, url] = process.argv.slice(2);
const load = (relative) => import(pathToFileURL(path.join(sdkDir, "dist/esm", relative)).href);
const { Client } = await load("client/index.js");
const { WebSocketClientTransport } = await load("client/websocket.js");
const { LoggingMessageNotificationSchema, ToolListChangedNotificationSchema } = await load("types.js");

const client = new Client({ name: "ts-sdk-check", version: "1.0.0" });
const logs = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
  logs.push(notification.params);
});
let listChanged = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
  listChanged += 1;
});

await client.connect(new WebSocketClientTransport(new URL(url)));
const report = {
  protocolVersion: client.getServerVersion() ? "initialized" : "none",
  capabilities: client.getServerCapabilities(),
  tools: (await client.listTools()).tools.map((tool) => ({
    name: tool.name,
    description: tool.description,
    hasOutputSchema: tool.outputSchema !== undefined,
  })),
  image: await client.callTool({ name: "image", arguments: {} }),
  audio: await client.callTool({ name: "audio", arguments: {} }),
  mixed: await client.callTool({ name: "mixed", arguments: {} }),
  missing: await client.callTool({ name: "missing_file", arguments: {} }),
};
await client.setLoggingLevel("warning");
report.chatty = await client.callTool({ name: "chatty", arguments: {} });
report.logs = logs;
await client.callTool({ name: "add_tool", arguments: {} });
report.toolsAfter = (await client.listTools()).tools.map((tool) => tool.name);
report.listChanged = listChanged;
await client.close();
process.stdout.write(JSON.stringify(report));
