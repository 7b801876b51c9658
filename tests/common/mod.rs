pub mod dnsmasq;
pub mod kamailio;
