"""The stand-in joins the way Hazelcast's TCP/IP joiner does: every well-known member at once,
one connection timeout (3 s) in all, however many members are silent. Run by joiner.rs."""
import importlib.util, sys, time, types, socket
import xml.etree.ElementTree as ET
spec = importlib.util.spec_from_file_location("sc", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
# One member that answers and ten that never do (SYNs dropped by a full backlog).
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(); port = srv.getsockname()[1]
hole = socket.socket(); hole.bind(("127.0.0.1", 0)); hole.listen(0); hport = hole.getsockname()[1]
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.1", hport)); fill.append(c)
time.sleep(0.2)
members = "".join("<member><hostName>127.0.0.%d</hostName><port>%d</port></member>" % (1, hport) for i in range(1, 11))
members += "<member><hostName>127.0.0.1</hostName><port>%d</port></member>" % port
axis2 = ET.fromstring("<axisconfig><clustering enable='true'><members>%s</members></clustering></axisconfig>" % members)
lines = []
node = types.SimpleNamespace(axis2=axis2, own_addresses=set(), log=types.SimpleNamespace(info=lambda c, t: lines.append(t)))
m.hazelcast_port = lambda n: 4000
t0 = time.monotonic(); m.log_cluster_members(node); dt = time.monotonic() - t0
print("%.2f s" % dt, len(lines), [l for l in lines if "joined" in l])
assert dt < 3.6 and len(lines) == 11
