//! The `/admin/faults` endpoint: read, replace or clear the fault plan that
//! the Kinesis call pipeline consults ([`crate::fault`]).

use crate::admin::{self, refused};
use crate::body::{BodyBudget, announced_length};
use crate::fault::FaultPlan;
use crate::response::{Body, respond};
use crate::service::Service;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::time::SystemTime;

/// Largest fault plan `PUT /admin/faults` accepts.
const MAX_FAULT_PLAN_BYTES: usize = 1024 * 1024;

/// `GET /admin/faults`, `PUT /admin/faults` (replace the plan, restarting its
/// random streams) and `DELETE /admin/faults` (no faults); under `--auth` or
/// `--admin-token` only with the credentials [`crate::admin`] asks for.
pub async fn handle(svc: &Service, bodies: &BodyBudget, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let now = SystemTime::now();
    let access = match admin::check(svc.config(), &parts, now) {
        Ok(a) => a,
        Err(r) => return refused(r),
    };
    let text = match bodies
        .read(
            body,
            announced_length(&parts),
            MAX_FAULT_PLAN_BYTES,
            svc.config().connection_limits.body_read_timeout,
        )
        .await
    {
        Ok(b) => b.bytes,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                "text/plain",
                Bytes::from(format!("cannot read the fault plan: {e}\n")),
            );
        }
    };
    if let Err(r) = admin::verify_signature(svc.config(), access, &parts, &text, now) {
        return refused(r);
    }
    let plan_json = |plan: &FaultPlan| {
        respond(
            StatusCode::OK,
            "application/json",
            Bytes::from(plan.to_json()),
        )
    };
    match parts.method {
        Method::GET => plan_json(&svc.faults().plan()),
        Method::DELETE => {
            svc.faults().replace(FaultPlan::none());
            plan_json(&FaultPlan::none())
        }
        Method::PUT => {
            let plan = match std::str::from_utf8(&text)
                .map_err(|e| e.to_string())
                .and_then(|t| FaultPlan::from_json(t).map_err(|e| e.to_string()))
            {
                Ok(plan) => plan,
                Err(e) => {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        "text/plain",
                        Bytes::from(format!("{e}\n")),
                    );
                }
            };
            tracing::info!(
                seed = plan.seed,
                rules = plan.rules.len(),
                "fault plan replaced"
            );
            svc.faults().replace(plan.clone());
            plan_json(&plan)
        }
        _ => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"use GET, PUT or DELETE\n"),
        ),
    }
}
