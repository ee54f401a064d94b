// Drives the official @microsoft/signalr client for the Python tests (tests/support/signalr_node.py).
//
// stdin: one JSON command per line; stdout: one JSON report per line; stderr: the client's own log.
//   {"op":"start","url":...,"token":...,"targets":["DocumentApproved"],"autoAck":true,
//    "skipNegotiation":false,"reconnectDelays":[0,500]}      -> {"kind":"started",...} | {"kind":"start_failed",...}
//   {"op":"token","token":...}                                -> (the token accessTokenFactory returns from now on)
//   {"op":"invoke","id":"1","method":"MarkRead","args":[...]} -> {"kind":"result",...} | {"kind":"error",...}
//   {"op":"stop"}                                             -> {"kind":"stopped"}, then the process exits
// Unprompted: {"kind":"event","target":...,"args":[...]}, {"kind":"acked",...}, {"kind":"reconnecting",...},
// {"kind":"reconnected",...}, {"kind":"closed",...}.
import readline from "node:readline";
import { HttpTransportType, HubConnectionBuilder, LogLevel } from "@microsoft/signalr";

const report = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const messageOf = (error) => (error ? String(error.message ?? error) : null);
const stderrLogger = {
  log(level, message) {
    if (level >= LogLevel.Information) process.stderr.write(`[signalr ${LogLevel[level]}] ${message}\n`);
  },
};

let connection = null;
let token = null;
let tokenRequests = 0;

function build(command) {
  token = command.token;
  const options = {
    accessTokenFactory: () => {
      tokenRequests += 1;
      return token;
    },
  };
  if (command.skipNegotiation) {
    options.skipNegotiation = true;
    options.transport = HttpTransportType.WebSockets;
  }
  let builder = new HubConnectionBuilder().withUrl(command.url, options).configureLogging(stderrLogger);
  if (command.reconnectDelays) builder = builder.withAutomaticReconnect(command.reconnectDelays);
  const built = builder.build();

  for (const target of command.targets ?? []) {
    // The handler an existing app has: read the camelCase fields, acknowledge by notificationId.
    built.on(target, async (...args) => {
      report({ kind: "event", target, args });
      if (command.autoAck && args[0]?.notificationId) {
        try {
          await built.invoke("AcknowledgeNotification", args[0].notificationId);
          report({ kind: "acked", notificationId: args[0].notificationId });
        } catch (error) {
          report({ kind: "ack_failed", notificationId: args[0].notificationId, error: messageOf(error) });
        }
      }
    });
  }
  built.onreconnecting((error) => report({ kind: "reconnecting", error: messageOf(error) }));
  built.onreconnected((connectionId) => report({ kind: "reconnected", connectionId: connectionId ?? null, tokenRequests }));
  built.onclose((error) => report({ kind: "closed", error: messageOf(error) }));
  return built;
}

async function handle(command) {
  switch (command.op) {
    case "start":
      connection = build(command);
      try {
        await connection.start();
        report({ kind: "started", connectionId: connection.connectionId ?? null, tokenRequests });
      } catch (error) {
        report({ kind: "start_failed", error: messageOf(error) });
      }
      break;
    case "token":
      token = command.token;
      break;
    case "invoke":
      try {
        const result = await connection.invoke(command.method, ...(command.args ?? []));
        report({ kind: "result", id: command.id, result: result ?? null });
      } catch (error) {
        report({ kind: "error", id: command.id, error: messageOf(error) });
      }
      break;
    case "stop":
      if (connection) await connection.stop();
      report({ kind: "stopped" });
      process.exit(0);
      break;
    default:
      report({ kind: "bad_command", command });
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim()) handle(JSON.parse(line)); // not awaited: an invoke must not block the next command
});
lines.on("close", async () => {
  if (connection) await connection.stop();
  process.exit(0);
});
