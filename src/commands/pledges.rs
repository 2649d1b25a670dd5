//! `/pledge`: make, keep, extend, release and list pledges.

use super::execute::{Context, Failure, LIST_LIMIT, future_day, refuse};
use super::*;
use crate::domain::dates::DueDate;
use crate::domain::ids::PledgeRef;
use crate::domain::pledge::{PledgeStatus, days_overdue, has_capacity};
use crate::message::Message;
use crate::message::build::{PledgeButtons, day_label, pledge_section, plural};
use crate::message::form::fields;
use crate::store::{EventKind, NewPledge, PledgeRecord, Tx};

pub(super) async fn run(tx: &mut Tx, ctx: &Context<'_>, command: PledgeCommand) -> Result<Message, Failure> {
    match command {
        PledgeCommand::Make { text, due } => make_pledge(tx, ctx, &text, &due).await,
        PledgeCommand::Done { pledge, note } => keep_pledge(tx, ctx, pledge, note.as_deref()).await,
        PledgeCommand::Extend { pledge, due } => extend_pledge(tx, ctx, pledge, &due).await,
        PledgeCommand::Release { pledge, reason } => release_pledge(tx, ctx, pledge, &reason).await,
        PledgeCommand::List(filter) => list_pledges(tx, ctx, filter).await,
    }
}

async fn make_pledge(tx: &mut Tx, ctx: &Context<'_>, text: &str, due: &DueDate) -> Result<Message, Failure> {
    let today = ctx.today();
    let due_on = future_day(due, today, "due date", fields::DUE)?;
    let open = tx.open_pledges_of(ctx.ws, ctx.member.id).await?;
    let limit = ctx.defaults.max_open_pledges;
    if !has_capacity(open.len(), limit) {
        let mut reply = Message::private(format!(
            "You already hold {} open pledges, the most this team keeps at once so each gets the attention it \
             deserves. Keep or release one first:",
            open.len()
        ));
        for pledge in &open {
            reply = reply.with_section(pledge_section(pledge, today, PledgeButtons::All));
        }
        return Err(Failure::User(reply));
    }
    let pledge = tx
        .insert_pledge(
            ctx.ws,
            &NewPledge {
                channel: ctx.channel.id,
                owner: ctx.member.id,
                text,
                due_on,
                experiment: None,
                reminders: ctx.reminders(),
            },
            ctx.now,
        )
        .await?;
    let data = serde_json::json!({ "due_on": due_on.to_string() });
    ctx.event(tx, EventKind::PledgeMade, Some(pledge.number.to_string()), data).await?;
    let text = format!(
        "🤝 {} pledged: {} (by {}, {})",
        ctx.member.display_name,
        pledge.text,
        day_label(due_on, today),
        pledge.number
    );
    Ok(Message::channel(text).with_section(pledge_section(&pledge, today, PledgeButtons::All)))
}

async fn own_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef) -> Result<PledgeRecord, Failure> {
    let Some(pledge) = tx.pledge(ctx.ws, id).await? else {
        return refuse(format!(
            "There is no {id} in this workspace. `/pledge list all` shows the channel's open pledges."
        ));
    };
    if pledge.owner_id != ctx.member.id {
        return refuse(format!("{id} is {}'s pledge; only they can keep or release it.", pledge.owner_name));
    }
    if !pledge.status.can_resolve() {
        return refuse(format!("{id} is already {}.", pledge.status.as_str()));
    }
    Ok(pledge)
}

async fn keep_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, note: Option<&str>) -> Result<Message, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    if !tx.resolve_pledge(ctx.ws, pledge.id, PledgeStatus::Kept, note, ctx.now).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    let late = days_overdue(pledge.due_on, ctx.today());
    ctx.event(tx, EventKind::PledgeKept, Some(id.to_string()), serde_json::json!({ "days_late": late })).await?;
    let when = match late {
        0 => "on time".to_string(),
        d => format!("{d} day{} late, and kept all the same", plural(d as usize)),
    };
    let mut text = format!("✅ {} kept {id}: {} ({when})", ctx.member.display_name, pledge.text);
    if let Some(note) = note {
        text.push_str(&format!(" — {note}"));
    }
    Ok(Message::channel(text))
}

async fn extend_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, due: &DueDate) -> Result<Message, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    let today = ctx.today();
    let due_on = future_day(due, today, "new due date", fields::DUE)?;
    if due_on == pledge.due_on {
        return refuse(format!("{id} is already due {}.", day_label(due_on, today)));
    }
    if !tx.extend_pledge(ctx.ws, &pledge, due_on, ctx.reminders(), ctx.now).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    let data = serde_json::json!({ "from": pledge.due_on.to_string(), "to": due_on.to_string() });
    ctx.event(tx, EventKind::PledgeExtended, Some(id.to_string()), data).await?;
    let updated = PledgeRecord { due_on, status: PledgeStatus::Open, ..pledge };
    Ok(Message::private(format!(
        "📅 {id} is now due {}. Saying so early keeps everyone's plans honest.",
        day_label(due_on, today)
    ))
    .with_section(pledge_section(&updated, today, PledgeButtons::All)))
}

async fn release_pledge(tx: &mut Tx, ctx: &Context<'_>, id: PledgeRef, reason: &str) -> Result<Message, Failure> {
    let pledge = own_pledge(tx, ctx, id).await?;
    if !tx.resolve_pledge(ctx.ws, pledge.id, PledgeStatus::Released, Some(reason), ctx.now).await? {
        return refuse(format!("{id} changed while you typed; `/pledge list` shows where it stands."));
    }
    ctx.event(tx, EventKind::PledgeReleased, Some(id.to_string()), serde_json::json!({})).await?;
    Ok(Message::private(format!(
        "Released {id} ({}). Thanks for saying so: an honest release keeps the team's trust, and it is not a break.",
        pledge.text
    )))
}

async fn list_pledges(tx: &mut Tx, ctx: &Context<'_>, filter: PledgeFilter) -> Result<Message, Failure> {
    let today = ctx.today();
    let (pledges, whose) = match filter {
        PledgeFilter::Mine => (tx.open_pledges_of(ctx.ws, ctx.member.id).await?, "Your"),
        PledgeFilter::All => (tx.open_pledges_in_channel(ctx.ws, ctx.channel.id, LIST_LIMIT).await?, "This channel's"),
    };
    if pledges.is_empty() {
        let text = match filter {
            PledgeFilter::Mine => "You have no open pledges. Make one: `/pledge call five customers by fri`",
            PledgeFilter::All => "No open pledges in this channel. Make one: `/pledge call five customers by fri`",
        };
        return Ok(Message::private(text));
    }
    // The channel's list is cut to fit a message; its headline still tells the whole number.
    let total = match filter {
        PledgeFilter::All if pledges.len() as i64 >= LIST_LIMIT => {
            tx.count_open_pledges_in_channel(ctx.ws, ctx.channel.id).await?
        }
        _ => pledges.len() as i64,
    };
    let headline = if total > pledges.len() as i64 {
        format!("{whose} open pledges ({total}, showing the {} due soonest)", pledges.len())
    } else {
        format!("{whose} open pledges ({total})")
    };
    let mut reply = Message::private(headline);
    for pledge in &pledges {
        reply = reply.with_section(pledge_section(
            pledge,
            today,
            if pledge.owner_id == ctx.member.id { PledgeButtons::All } else { PledgeButtons::None },
        ));
    }
    Ok(reply)
}
