//! `admin suspend` and `admin resume`: take a tenant offline keeping all
//! its data, and bring back exactly the state it had. What suspend records
//! on the namespace is `state::Suspension`.

use std::path::Path;

use crate::clock::{now, rfc3339};
use crate::cluster::{Change, Cluster};
use crate::flags;
use crate::kubectl::{Conflicts, Kubectl, Scope};
use crate::live::{BotDeployment, Tenants};
use crate::names::{MANAGER, TENANT_LABEL};
use crate::object::name;
use crate::state::{Lifecycle, Suspension};

impl flags::Suspend {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let cluster = Cluster::connect(&self.cluster, root)?;
        cluster.change(
            &Change::routine(&self.tenant, "a suspension", self.yes),
            |kubectl| {
                let tenants = Tenants::discover(kubectl)?;
                let namespace = tenants.require(&self.tenant)?;
                if let Some(note) = Lifecycle::of(namespace).note(self.tenant.as_str()) {
                    crate::outcome::bail_unchanged!("tenant {} is already {note}", self.tenant);
                }
                BotDeployment::in_namespace(kubectl, &self.tenant, namespace)
            },
            |kubectl, bot| self.suspend(kubectl, bot),
        )
    }

    fn suspend(&self, kubectl: &Kubectl, bot: BotDeployment) -> anyhow::Result<()> {
        let ns = bot.namespace.as_str();
        let ingresses = kubectl.get_list("ingresses", Scope::Namespace(ns), Some(TENANT_LABEL))?;
        // Record the state to come back to before changing anything.
        Suspension::record(
            kubectl,
            ns,
            bot.replicas,
            &ingresses,
            &rfc3339(now()?),
            &crate::audit::operator(),
        )?;
        eprintln!(
            "Removing the Ingress and stopping the bot of {} ...",
            self.tenant
        );
        for ing in &ingresses {
            kubectl.delete(Some(ns), "ingress", name(ing), None)?;
        }
        kubectl.scale(ns, &bot.name, 0)?;
        println!(
            "Tenant {} is suspended: its website and bot no longer answer; its data is kept. Bring it back with `cargo xtask admin resume {}`.",
            self.tenant, self.tenant
        );
        Ok(())
    }
}

impl flags::Resume {
    pub(crate) fn run(self, root: &Path) -> anyhow::Result<()> {
        let cluster = Cluster::connect(&self.cluster, root)?;
        cluster.change(
            &Change::routine(&self.tenant, "a resumption", self.yes),
            |kubectl| {
                let tenants = Tenants::discover(kubectl)?;
                let namespace = tenants.require(&self.tenant)?;
                match Lifecycle::of(namespace) {
                    Lifecycle::Suspended { .. } => {}
                    Lifecycle::Active => {
                        crate::outcome::bail_unchanged!("tenant {} is not suspended", self.tenant)
                    }
                    other => crate::outcome::bail_unchanged!(
                        "tenant {} is not suspended: it is {}",
                        self.tenant,
                        other.note(self.tenant.as_str()).unwrap_or_default()
                    ),
                }
                let suspension = Suspension::read(namespace)?;
                let bot = BotDeployment::in_namespace(kubectl, &self.tenant, namespace)?;
                Ok((suspension, bot))
            },
            |kubectl, (suspension, bot)| self.resume(kubectl, suspension, bot),
        )
    }

    fn resume(
        &self,
        kubectl: &Kubectl,
        suspension: Suspension,
        bot: BotDeployment,
    ) -> anyhow::Result<()> {
        let ns = bot.namespace.as_str();
        eprintln!(
            "Starting the bot of {} and restoring its Ingress ...",
            self.tenant
        );
        kubectl.scale(ns, &bot.name, suspension.replicas)?;
        if suspension.replicas > 0 {
            kubectl.rollout_status(ns, &bot.name, &self.rollout.timeout)?;
        }
        for ing in &suspension.ingresses {
            // Suspend deleted it; a conflict here means someone made another since.
            kubectl.apply_object(ing, MANAGER, Conflicts::Refuse)?;
        }
        Suspension::clear(kubectl, ns)?;
        println!(
            "Tenant {} is resumed, as it was before it was suspended.",
            self.tenant
        );
        Ok(())
    }
}
