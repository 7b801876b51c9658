pub mod kamailio;
