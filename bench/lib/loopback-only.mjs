// Preload (node --import) for a third-party server that listens on every interface when given
// only a port (Portkey's gateway): binds it to 127.0.0.1 instead, so the benchmark opens no
// port beyond loopback.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    const rest = typeof args[1] === "string" ? args.slice(2) : args.slice(1);
    return listen.call(this, Number(args[0]), "127.0.0.1", ...rest);
  }
  if (args[0] !== null && typeof args[0] === "object" && args[0].path === undefined) return listen.call(this, { ...args[0], host: "127.0.0.1" }, ...args.slice(1));
  return listen.apply(this, args);
};
