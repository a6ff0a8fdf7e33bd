-- One database per service (PostgreSQL's entrypoint runs this once).
CREATE DATABASE hometrip_gateway;
CREATE DATABASE hometrip_admin;
CREATE DATABASE hometrip_auth;
CREATE DATABASE hometrip_user;
CREATE DATABASE hometrip_listing;
CREATE DATABASE hometrip_booking;
CREATE DATABASE hometrip_payment;
CREATE DATABASE hometrip_message;
CREATE DATABASE hometrip_review;
CREATE DATABASE hometrip_analytics;
CREATE DATABASE hometrip_notification;
CREATE DATABASE hometrip_search;
CREATE DATABASE hometrip_realtime;
