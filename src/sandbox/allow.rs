//! PLACEHOLDER until the proxy branch lands.
#[derive(Debug, Clone, Default)]
pub struct Allowlist;
impl Allowlist {
    pub fn parse(_entries: &[String]) -> Result<Allowlist, String> {
        Ok(Allowlist)
    }
}
#[derive(Debug, Clone)]
pub struct Policy {
    pub allowlist: Allowlist,
    pub allow_all: bool,
}
