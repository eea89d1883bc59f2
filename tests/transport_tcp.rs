//! The TCP transport: bound before announced, port ranges, IPv6, names,
//! timeouts. Loopback only.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::time::Duration;

use rpcplugin::transport::{ConnectError, ListenError, PortRange, TcpTransport};
use rpcplugin::{Endpoint, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

async fn echo_once(
    transport: &TcpTransport,
    endpoint: &Endpoint,
    incoming: &mut rpcplugin::transport::Incoming,
) {
    let mut client = transport.connect(endpoint).await.expect("connect");
    let mut conn = incoming.next().await.unwrap().unwrap();
    assert!(conn.peer_addr().unwrap().ip().is_loopback());
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.unwrap();
    conn.write_all(&buf).await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn localhost_port_zero_lets_the_os_pick() {
    let transport = TcpTransport::localhost();
    let (endpoint, mut incoming) = transport.listen().await.unwrap();
    let (host, port) = endpoint.tcp_parts().unwrap();
    assert_eq!(host.to_string(), "127.0.0.1");
    assert_ne!(port, 0);
    assert_eq!(endpoint.network(), "tcp");
    assert_eq!(endpoint.address(), format!("127.0.0.1:{port}"));
    echo_once(&transport, &endpoint, &mut incoming).await;
    transport.close().await.unwrap();
    transport.close().await.unwrap();
    assert!(incoming.next().await.is_none(), "incoming ends on close");
    assert!(
        transport.connect(&endpoint).await.is_err(),
        "nobody listens after close"
    );
}

#[tokio::test]
async fn ipv6_loopback() {
    let transport = TcpTransport::new(&"[::1]:0".parse().unwrap()).unwrap();
    let (endpoint, mut incoming) = transport.listen().await.unwrap();
    assert!(endpoint.address().starts_with("[::1]:"), "{endpoint}");
    echo_once(&transport, &endpoint, &mut incoming).await;
    transport.close().await.unwrap();
}

#[tokio::test]
async fn host_name_is_resolved_and_announced_as_an_address() {
    let transport = TcpTransport::new(&"localhost:0".parse().unwrap()).unwrap();
    let (endpoint, mut incoming) = transport.listen().await.unwrap();
    let (host, _) = endpoint.tcp_parts().unwrap();
    assert!(
        matches!(host, rpcplugin::transport::Host::Ip(ip) if ip.is_loopback()),
        "{endpoint}"
    );
    echo_once(&transport, &endpoint, &mut incoming).await;
}

#[tokio::test]
async fn unresolvable_name_is_a_clear_error() {
    let transport = TcpTransport::new(&"no-such-host.invalid:0".parse().unwrap()).unwrap();
    let err = transport.listen().await.unwrap_err();
    assert!(matches!(&err, ListenError::Resolve { host, .. } if host == "no-such-host.invalid"));
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
}

#[tokio::test]
async fn first_free_port_of_the_range_wins() {
    // Occupy one port and offer a range that starts there.
    let taken = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let first = taken.local_addr().unwrap().port();
    let last = first.saturating_add(20);
    let transport = TcpTransport::localhost().port_range(PortRange::new(first, last).unwrap());
    let (endpoint, mut incoming) = transport.listen().await.unwrap();
    let port = endpoint.tcp_parts().unwrap().1;
    assert!(
        port > first && port <= last,
        "{port} not in {first}+1..={last}"
    );
    echo_once(&transport, &endpoint, &mut incoming).await;
}

#[tokio::test]
async fn no_free_port_in_range_names_the_range() {
    let taken = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let transport = TcpTransport::localhost().port_range(PortRange::new(port, port).unwrap());
    let err = transport.listen().await.unwrap_err();
    assert!(matches!(err, ListenError::NoFreePort { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("ports {port}-{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn explicit_port_in_use_names_the_endpoint() {
    let taken = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = taken.local_addr().unwrap();
    let transport = TcpTransport::new(&Endpoint::tcp(addr)).unwrap();
    let err = transport.listen().await.unwrap_err();
    assert!(matches!(err, ListenError::Bind { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn unix_endpoint_is_the_wrong_network() {
    let unix: Endpoint = "/tmp/x.sock".parse().unwrap();
    assert!(matches!(
        TcpTransport::new(&unix),
        Err(ListenError::WrongNetwork {
            transport: "tcp",
            ..
        })
    ));
    let err = TcpTransport::localhost().connect(&unix).await.unwrap_err();
    assert!(matches!(err, ConnectError::WrongNetwork { .. }), "{err:?}");
}

#[tokio::test]
async fn connect_gives_up_after_the_timeout() {
    // A listener with a backlog of 1 that never accepts: once its queue is
    // full, the kernel drops further SYNs and a connect hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap();
    let listener = socket.listen(1).unwrap();
    let endpoint = Endpoint::tcp(listener.local_addr().unwrap());
    let transport = TcpTransport::localhost().connect_timeout(Duration::from_millis(300));
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..16 {
        match transport.connect(&endpoint).await {
            Ok(conn) => held.push(conn),
            Err(err) => {
                timed_out = Some(err);
                break;
            }
        }
    }
    let err = timed_out.expect("the backlog filled up within 16 connections");
    assert!(matches!(err, ConnectError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint.to_string()), "{err}");
    assert!(err.to_string().contains("300ms"), "{err}");
}
