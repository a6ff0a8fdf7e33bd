DROP TABLE analytics_session_steps;
