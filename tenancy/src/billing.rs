//! A month's bill: the plan's price plus metered overage.
//!
//! For each quota type the plan prices (`overage_cents`), the units used in the month beyond the
//! amount included (the type's `month` limit, 0 if it has none) are billed at that price. Other
//! types appear with their usage and no charge, so the bill also reads as a usage statement.
//! The price is the tenant's plan as it is now: plan changes during a month are not prorated.
//! Payment providers and invoices are out of scope here.

use serde::Serialize;

use crate::plan::{Plan, QuotaType, Window};
use crate::time::Month;

/// One quota type's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillLine {
    pub quota: QuotaType,
    pub used: u64,
    /// Units included in the price (`None`: the type is not metered).
    pub included: Option<u64>,
    pub over: u64,
    pub unit_cents: Option<u64>,
    pub amount_cents: u64,
}

/// `GET /v1/billing?month=YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bill {
    pub tenant_id: String,
    pub month: String,
    pub plan: String,
    pub price_cents: u64,
    pub lines: Vec<BillLine>,
    pub overage_cents: u64,
    pub total_cents: u64,
}

impl Bill {
    /// The bill of `tenant_id` on `plan` for `month`, given each type's usage in that month.
    pub fn compute(
        tenant_id: &str,
        plan: &Plan,
        month: Month,
        used: impl Fn(QuotaType) -> u64,
    ) -> Bill {
        let mut lines = Vec::new();
        let mut overage: u64 = 0;
        for quota in QuotaType::ALL {
            let used = used(quota);
            let unit = plan.spec.overage_cents.get(&quota).copied();
            let (included, over, amount) = match unit {
                Some(unit) => {
                    let included = plan
                        .spec
                        .limits(quota)
                        .and_then(|l| l.get(&Window::Month))
                        .copied()
                        .unwrap_or(0);
                    let over = used.saturating_sub(included);
                    (Some(included), over, over.saturating_mul(unit))
                }
                None => (None, 0, 0),
            };
            overage = overage.saturating_add(amount);
            lines.push(BillLine {
                quota,
                used,
                included,
                over,
                unit_cents: unit,
                amount_cents: amount,
            });
        }
        Bill {
            tenant_id: tenant_id.to_owned(),
            month: month.to_string(),
            plan: plan.name.clone(),
            price_cents: plan.spec.price_cents,
            lines,
            overage_cents: overage,
            total_cents: plan.spec.price_cents.saturating_add(overage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metered_types_are_billed_over_their_included_month() {
        let plan = Plan::from_json(
            br#"{"name":"starter","quotas":{"message_send":{"day":100},"api_call":{"month":1000}},
                "price_cents":1900,"overage_cents":{"message_send":2,"api_call":1}}"#,
        )
        .unwrap();
        let month = Month::parse("2026-12").unwrap();
        let bill = Bill::compute("t1", &plan, month, |q| match q {
            QuotaType::MessageSend => 350,
            QuotaType::ApiCall => 1200,
            QuotaType::InstanceCreate => 1,
            _ => 0,
        });
        assert_eq!(bill.month, "2026-12");
        assert_eq!(bill.price_cents, 1900);
        let line = |q| bill.lines.iter().find(|l| l.quota == q).unwrap();
        // message_send has no month limit: nothing included, every unit billed.
        assert_eq!(line(QuotaType::MessageSend).included, Some(0));
        assert_eq!(line(QuotaType::MessageSend).amount_cents, 700);
        assert_eq!(line(QuotaType::ApiCall).over, 200);
        assert_eq!(line(QuotaType::ApiCall).amount_cents, 200);
        assert_eq!(line(QuotaType::InstanceCreate).amount_cents, 0);
        assert_eq!(line(QuotaType::InstanceCreate).unit_cents, None);
        assert_eq!(bill.overage_cents, 900);
        assert_eq!(bill.total_cents, 2800);
        let json = serde_json::to_value(&bill).unwrap();
        assert_eq!(json["total_cents"], 2800);
        assert_eq!(json["lines"][0]["quota"], "message_send");
    }

    #[test]
    fn unmetered_plans_cost_their_price() {
        let plan = Plan::from_json(br#"{"name":"flat","price_cents":500}"#).unwrap();
        let bill = Bill::compute("t", &plan, Month::parse("2027-01").unwrap(), |_| 10);
        assert_eq!((bill.overage_cents, bill.total_cents), (0, 500));
    }
}
