//! `GET /ws`: one task per socket, reading the client's frames and writing
//! the socket's queue at the client's pace.
//!
//! The writer keeps each conversation's `message.created` frames gap-free
//! and in `seq` order: a frame already sent is dropped, and a frame past a
//! gap (a frame lost between processes, or events delivered out of order)
//! first back-fills the gap from the message store. A resume does the same
//! from the client's last seen `seq`. Until the client's first frame (or
//! half a second) nothing is written, so a resume sent at once comes before
//! any live frame.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use futures_util::StreamExt;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{ErrorCode, Id, Problem};
use hometrip_message::api::{Message, Participants};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::hub::{Next, Outgoing, SocketQueue};
use crate::service::RealtimeService;

/// Close code of a socket whose queue overflowed.
pub const SLOW_CONSUMER: u16 = 4008;
const RESUME_PAGE: u32 = 200;

/// The caller comes forwarded by the gateway, or with a bearer token (in
/// the header, or the `access_token` query parameter browsers use): the
/// `AuthUser` extractor, checked before any upgrade.
pub async fn ws(
    req: HttpRequest,
    body: web::Payload,
    svc: web::Data<RealtimeService>,
    user: AuthUser,
) -> Result<HttpResponse, Problem> {
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| Problem::new(ErrorCode::BadRequest, format!("not a WebSocket upgrade: {e}")))?;
    let max_frame = svc.settings.max_frame_bytes;
    let stream = stream.max_frame_size(max_frame).aggregate_continuations().max_continuation_size(max_frame);
    let svc = svc.into_inner();
    actix_web::rt::spawn(async move {
        let (queue, first_here) = svc.fanout.hub().register(user.id);
        svc.connected(user.id, first_here).await;
        match svc.presence_of_counterparts(user.id).await {
            Ok(frames) => frames.into_iter().for_each(|f| queue.push(f)),
            Err(e) => tracing::warn!(error = %e.detail, "presence of counterparts not sent"),
        }
        run(&svc, user.id, &queue, session, stream).await;
        let last_here = svc.fanout.hub().unregister(&queue);
        svc.disconnected(user.id, last_here).await;
    });
    Ok(response)
}

/// How a socket's writer stopped.
enum Stop {
    /// The client is gone (or the reader stopped).
    Gone,
    /// Its queue overflowed.
    SlowConsumer,
}

async fn run(
    svc: &RealtimeService,
    user: Id,
    queue: &Arc<SocketQueue>,
    session: Session,
    stream: actix_ws::AggregatedMessageStream,
) {
    let started = Notify::new();
    let mut writer_session = session.clone();
    let outcome = tokio::select! {
        stop = write(svc, user, queue, &mut writer_session, &started) => Some(stop),
        close = read(svc, user, queue, session.clone(), stream, &started) => {
            let _ = session.clone().close(close).await;
            None
        }
    };
    if let Some(stop) = outcome {
        let reason = match stop {
            Stop::SlowConsumer => {
                Some(CloseReason { code: CloseCode::Other(SLOW_CONSUMER), description: Some("slow consumer".into()) })
            }
            Stop::Gone => None,
        };
        // The client may not read any more: the close frame gets a moment,
        // then the connection goes with the session.
        let _ = tokio::time::timeout(Duration::from_secs(30), session.close(reason)).await;
    }
}

async fn send(session: &mut Session, queue: &SocketQueue, text: &str) -> Result<(), Stop> {
    tokio::select! {
        sent = session.text(text.to_owned()) => sent.map_err(|_| Stop::Gone),
        () = queue.overflow.notified() => Err(Stop::SlowConsumer),
    }
}

/// The seqs of a conversation this socket was sent: all of `first..=last`.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: i64,
    last: i64,
}

async fn write(svc: &RealtimeService, user: Id, queue: &SocketQueue, session: &mut Session, started: &Notify) -> Stop {
    let _ = tokio::time::timeout(Duration::from_millis(500), started.notified()).await;
    let mut sent: HashMap<Id, Span> = HashMap::new();
    loop {
        let item = match queue.pop() {
            Next::Stopped => return if queue.overflowed() { Stop::SlowConsumer } else { Stop::Gone },
            Next::Empty => {
                queue.ready.notified().await;
                continue;
            }
            Next::Item(item) => item,
        };
        let result = match item {
            Outgoing::Frame { text, order: None } => send(session, queue, &text).await,
            Outgoing::Frame { text, order: Some((conversation, seq)) } => {
                live_message(svc, session, queue, &mut sent, conversation, seq, &text).await
            }
            Outgoing::Resume(conversations, notifications_after) => {
                let mut result = Ok(());
                if let Some(after) = notifications_after {
                    if let Err(stop) = backfill_notifications(svc, session, queue, user, after).await {
                        return stop;
                    }
                }
                for (conversation, after) in conversations {
                    if !is_participant(svc, conversation, user).await {
                        continue;
                    }
                    if let Err(stop) = resume(svc, session, queue, &mut sent, conversation, after).await {
                        result = Err(stop);
                        break;
                    }
                }
                result
            }
        };
        if let Err(stop) = result {
            return stop;
        }
    }
}

/// A live `message.created`: dropped when sent already; past a gap, the gap
/// is back-filled first.
async fn live_message(
    svc: &RealtimeService,
    session: &mut Session,
    queue: &SocketQueue,
    sent: &mut HashMap<Id, Span>,
    conversation: Id,
    seq: i64,
    text: &str,
) -> Result<(), Stop> {
    match sent.get(&conversation).copied() {
        Some(span) if seq <= span.last => Ok(()),
        Some(mut span) => {
            if seq > span.last + 1 {
                if let Some(last) = backfill(svc, session, queue, conversation, span.last, Some(seq)).await? {
                    span.last = last;
                }
            }
            if seq > span.last {
                span.last = seq;
                send(session, queue, text).await?;
            }
            sent.insert(conversation, span);
            Ok(())
        }
        None => {
            sent.insert(conversation, Span { first: seq, last: seq });
            send(session, queue, text).await
        }
    }
}

/// A resume from `after`: what this socket was not sent yet of the
/// conversation's messages after it.
async fn resume(
    svc: &RealtimeService,
    session: &mut Session,
    queue: &SocketQueue,
    sent: &mut HashMap<Id, Span>,
    conversation: Id,
    after: i64,
) -> Result<(), Stop> {
    let mut span = sent.get(&conversation).copied().unwrap_or(Span { first: after + 1, last: after });
    // Live messages came first (a late resume): the ones before them now.
    if after + 1 < span.first {
        backfill(svc, session, queue, conversation, after, Some(span.first)).await?;
        span.first = after + 1;
    }
    if let Some(last) = backfill(svc, session, queue, conversation, span.last.max(after), None).await? {
        span.last = last;
    }
    sent.insert(conversation, span);
    Ok(())
}

/// Sends the conversation's messages after `after` (before `before`, when
/// given), page by page; the last seq sent.
async fn backfill(
    svc: &RealtimeService,
    session: &mut Session,
    queue: &SocketQueue,
    conversation: Id,
    mut after: i64,
    before: Option<i64>,
) -> Result<Option<i64>, Stop> {
    let mut last = None;
    loop {
        let page: Vec<Message> = match svc.messages.messages_after(conversation, after, RESUME_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e.detail, "messages not back-filled");
                return Ok(last);
            }
        };
        let full = page.len() == RESUME_PAGE as usize;
        for message in page {
            if before.is_some_and(|b| message.seq >= b) {
                return Ok(last);
            }
            after = message.seq;
            last = Some(message.seq);
            let frame = json!({"type": "message.created", "data": message});
            send(session, queue, &frame.to_string()).await?;
        }
        if !full {
            return Ok(last);
        }
    }
}

/// Sends the user's notifications after `after`.
async fn backfill_notifications(
    svc: &RealtimeService,
    session: &mut Session,
    queue: &SocketQueue,
    user: Id,
    mut after: Option<Id>,
) -> Result<(), Stop> {
    loop {
        let page = match svc.notifications.after(user, after, RESUME_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e.detail, "notifications not back-filled");
                return Ok(());
            }
        };
        let full = page.len() == RESUME_PAGE as usize;
        for n in page {
            after = Some(n.id);
            send(session, queue, &json!({"type": "notification.created", "data": n}).to_string()).await?;
        }
        if !full {
            return Ok(());
        }
    }
}

async fn is_participant(svc: &RealtimeService, conversation: Id, user: Id) -> bool {
    matches!(svc.messages.participants(conversation).await, Ok(Some(p)) if p.includes(user))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Ping,
    Typing {
        conversation_id: Id,
    },
    Resume {
        #[serde(default)]
        conversations: HashMap<Id, i64>,
        /// The last notification id seen; `null` for all of them.
        #[serde(default, deserialize_with = "present")]
        notifications_after: Option<Option<Id>>,
    },
}

/// Reads the client's frames until it goes, answering heartbeats; the close
/// reason to send, if any.
async fn read(
    svc: &RealtimeService,
    user: Id,
    queue: &SocketQueue,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    started: &Notify,
) -> Option<CloseReason> {
    let heartbeat = Duration::from_secs(svc.settings.heartbeat_secs.max(1));
    let mut tick = tokio::time::interval(heartbeat);
    let mut heard = Instant::now();
    // Conversations this socket may type in, and when it last did.
    let mut typing: HashMap<Id, (Option<Participants>, Option<Instant>)> = HashMap::new();
    loop {
        tokio::select! {
            msg = stream.next() => {
                heard = Instant::now();
                match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        started.notify_one();
                        if let Some(answer) = client_frame(svc, user, queue, &text, &mut typing).await {
                            queue.push(answer);
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        return Some(CloseReason { code: CloseCode::Unsupported, description: Some("frames are JSON text".into()) });
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None => return None,
                    Some(Err(ProtocolError::Overflow)) => {
                        return Some(CloseReason { code: CloseCode::Size, description: Some("frame too large".into()) });
                    }
                    Some(Err(_)) => return Some(CloseReason { code: CloseCode::Protocol, description: None }),
                }
            }
            _ = tick.tick() => {
                if heard.elapsed() > heartbeat * 3 {
                    return Some(CloseReason { code: CloseCode::Away, description: Some("no heartbeat".into()) });
                }
                if session.ping(b"").await.is_err() {
                    return None;
                }
            }
        }
    }
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Id>>, D::Error> {
    Option::<Id>::deserialize(d).map(Some)
}

fn error_frame(detail: &str) -> Outgoing {
    let frame = json!({"type": "error", "data": {"detail": detail}});
    Outgoing::Frame { text: Arc::from(frame.to_string()), order: None }
}

async fn client_frame(
    svc: &RealtimeService,
    user: Id,
    queue: &SocketQueue,
    text: &str,
    typing: &mut HashMap<Id, (Option<Participants>, Option<Instant>)>,
) -> Option<Outgoing> {
    let frame = match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => frame,
        Err(e) => return Some(error_frame(&format!("unreadable frame: {e}"))),
    };
    match frame {
        ClientFrame::Ping => Some(Outgoing::Frame { text: Arc::from(r#"{"type":"pong"}"#), order: None }),
        ClientFrame::Resume { conversations, notifications_after } => {
            let mut list: Vec<(Id, i64)> = conversations.into_iter().take(1000).collect();
            list.sort();
            queue.push(Outgoing::Resume(list, notifications_after));
            None
        }
        ClientFrame::Typing { conversation_id } => {
            if typing.len() > 1000 {
                typing.clear();
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = typing.entry(conversation_id) {
                slot.insert((svc.messages.participants(conversation_id).await.ok().flatten(), None));
            }
            let entry = typing.get_mut(&conversation_id)?;
            let Some(participants) = entry.0.filter(|p| p.includes(user)) else {
                return Some(error_frame("no such conversation"));
            };
            // One typing frame a second is plenty.
            if entry.1.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                return None;
            }
            entry.1 = Some(Instant::now());
            let frame = json!({"type": "typing", "data": {"conversation_id": conversation_id, "user_id": user}});
            if let Err(e) = svc.fanout.publish(&[participants.other(user)], &frame, None).await {
                tracing::warn!(error = %e, "typing not sent");
            }
            None
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(ws));
}
