//! What a one-click button does, for every platform: run a command at once, or open a form. A form
//! that cannot succeed (closing an experiment that is already closed, releasing someone else's
//! pledge) is not opened: the person is told why instead, before typing anything.

use super::{Command, ExperimentCommand, PledgeCommand};
use crate::domain::experiment::{ExperimentStatus, Outcome};
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::message::form::{self, Form};
use crate::message::{ActionKind, Message};
use crate::store::{Store, StoreError, WorkspaceId};

/// What a clicked button does.
#[derive(Debug, Clone, PartialEq)]
pub enum Clicked {
    Run(Command),
    Open(FormFor),
}

/// A form a button opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormFor {
    UpdateMetric(ExperimentRef),
    Close(ExperimentRef),
    ExtendReview(ExperimentRef),
    ExtendPledge(PledgeRef),
    ReleasePledge(PledgeRef),
}

pub fn clicked(kind: ActionKind) -> Clicked {
    match kind {
        ActionKind::StartExperiment(id) => Clicked::Run(Command::Experiment(ExperimentCommand::Start(id))),
        ActionKind::Vote(id) => Clicked::Run(Command::Experiment(ExperimentCommand::Vote(id))),
        ActionKind::PledgeDone(id) => Clicked::Run(Command::Pledge(PledgeCommand::Done { pledge: id, note: None })),
        ActionKind::RecordReading { experiment, value } => {
            Clicked::Run(Command::Experiment(ExperimentCommand::Update {
                experiment,
                value,
                unit: None,
                note: None,
                confirmed: true,
            }))
        }
        ActionKind::UpdateMetric(id) => Clicked::Open(FormFor::UpdateMetric(id)),
        ActionKind::CloseExperiment(id) => Clicked::Open(FormFor::Close(id)),
        ActionKind::ExtendReview(id) => Clicked::Open(FormFor::ExtendReview(id)),
        ActionKind::PledgeExtend(id) => Clicked::Open(FormFor::ExtendPledge(id)),
        ActionKind::PledgeRelease(id) => Clicked::Open(FormFor::ReleasePledge(id)),
    }
}

/// The form to open for `member` (by platform id), or what to tell them instead: that it is not
/// theirs, or can no longer succeed.
pub async fn form_for(
    store: &Store,
    ws: WorkspaceId,
    member: &str,
    what: FormFor,
) -> Result<Result<Form, Message>, StoreError> {
    let mut tx = store.read().await?;
    let refuse = |text: String| Ok(Err(Message::private(text)));
    match what {
        FormFor::UpdateMetric(id) | FormFor::Close(id) | FormFor::ExtendReview(id) => {
            let Some(experiment) = tx.experiment(ws, id).await? else {
                return refuse(format!(
                    "There is no {id} in this workspace. `/experiment list all` shows every experiment."
                ));
            };
            let status = experiment.status;
            match what {
                FormFor::UpdateMetric(_) if status != ExperimentStatus::Running => {
                    refuse(format!("{id} is {}; readings go to running experiments.", status.as_str()))
                }
                FormFor::UpdateMetric(_) => Ok(Ok(form::update_metric(
                    id,
                    &experiment.title,
                    &experiment.metric.name,
                    experiment.metric.unit.as_deref(),
                ))),
                FormFor::Close(_) => match crate::domain::experiment::close(id, status, Outcome::Won) {
                    Ok(_) => Ok(Ok(form::close(id, &experiment.title))),
                    Err(why) => refuse(why.to_string()),
                },
                _ => match crate::domain::experiment::edit(id, status) {
                    Ok(()) => Ok(Ok(form::extend_review(id, &experiment.title))),
                    Err(why) => refuse(why.to_string()),
                },
            }
        }
        FormFor::ExtendPledge(id) | FormFor::ReleasePledge(id) => {
            let Some(pledge) = tx.pledge(ws, id).await? else {
                return refuse(format!(
                    "There is no {id} in this workspace. `/pledge list all` shows the channel's open pledges."
                ));
            };
            if pledge.owner_external_id != member {
                return refuse(format!(
                    "{id} is {}'s pledge; only they can keep, extend or release it.",
                    pledge.owner_name
                ));
            }
            if !pledge.status.can_resolve() {
                return refuse(format!("{id} is already {}.", pledge.status.as_str()));
            }
            Ok(Ok(match what {
                FormFor::ExtendPledge(_) => form::extend_pledge(id, &pledge.text),
                _ => form::release_pledge(id, &pledge.text),
            }))
        }
    }
}
